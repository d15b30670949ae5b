//! Validation of a loaded project: what pricescan-ctl refuses (exit 2) and what it only
//! warns about, key by key.

use super::compose::{MountType, Service};
use super::graph;
use super::parse::cycle_error;
use super::project::{DEFAULT_NETWORK, Project};
use crate::error::ConfigError;

impl Project {
    pub(super) fn validate(&self) -> Result<Vec<String>, ConfigError> {
        let mut warnings = Vec::new();
        for key in self.file.extra.keys() {
            match key.as_str() {
                "version" => warnings.push("the top-level version key is obsolete and ignored".into()),
                k if k.starts_with("x-") => {}
                k => return Err(ConfigError::new(format!("{k}: unsupported top-level key"))),
            }
        }
        for (name, service) in &self.file.services {
            self.validate_service(name, service)?;
        }
        graph::start_waves(&self.dependency_graph()).map_err(cycle_error)?;
        Ok(warnings)
    }

    fn validate_service(&self, name: &str, service: &Service) -> Result<(), ConfigError> {
        let at = |field: &str, msg: String| ConfigError::new(format!("services.{name}.{field}: {msg}"));
        if let Some(key) = service.extra.keys().find(|k| !k.starts_with("x-")) {
            return Err(at(key, "unsupported key".into())
                .hint("pricescan-ctl supports the Compose keys its stack uses; use x- for extensions"));
        }
        if service.image.is_none() && service.build.is_none() {
            return Err(at("image", "a service needs an image or a build".into()));
        }
        for dep in service.depends_on.keys() {
            let Some(target) = self.file.services.get(dep) else {
                return Err(at("depends_on", format!("depends on undefined service {dep}")));
            };
            if self.is_active(service) && !self.is_active(target) && service.depends_on[dep].required {
                return Err(at(
                    "depends_on",
                    format!("depends on {dep}, which no active profile enables"),
                ));
            }
        }
        for net in service.networks.keys() {
            if net != DEFAULT_NETWORK && !self.file.networks.contains_key(net) {
                return Err(at(
                    "networks",
                    format!("network {net} is not defined under the top-level networks:"),
                ));
            }
        }
        for mount in service.volumes.iter().filter(|m| m.kind == MountType::Volume) {
            if let Some(src) = mount
                .source
                .as_ref()
                .filter(|s| !self.file.volumes.contains_key(*s))
            {
                let msg = format!("volume {src} is not defined under the top-level volumes:");
                return Err(at("volumes", msg));
            }
        }
        // The engine would take a bad size only when the container is created, mid-deploy.
        let log_options = service.logging.iter().flat_map(|l| &l.options);
        for (option, value) in log_options.filter(|(k, _)| *k == "max-size") {
            super::units::parse_bytes(value).map_err(|e| at(&format!("logging.options.{option}"), e))?;
        }
        Ok(())
    }
}
