//! The window after a switch (DESIGN §15): the new release serves as a canary while the old
//! container stays ready. A clear breach, or a signal, sends Nginx back to the old one at
//! once; a release that holds keeps serving and the old one is retired as before.

use super::analysis::{self, Analysis, Figures, Verdict};
use super::rollout::{self, Leftover, Outcome, Plan, Sides};
use super::traffic::{self, Watch, Watched};
use crate::error::{CtlError, ExitStatus, Result};
use crate::load::generate;
use crate::load::spec::LoadSpec;
use crate::stack::rollout::AnalysisSettings;

/// How the release is watched: the settings, and a load to drive when there is no real
/// traffic (`deploy --load-test`).
pub struct Canary<'a> {
    pub settings: &'a AnalysisSettings,
    pub load: Option<LoadSpec>,
}

/// Judges a switched release by its traffic. Any other outcome passes through untouched.
pub async fn judge(
    plan: &Plan<'_>,
    outcome: Result<Outcome>,
    canary: &Canary<'_>,
) -> (Result<Outcome>, Option<Analysis>) {
    let sides = match outcome {
        Ok(Outcome::Switched(Leftover::Container(sides))) if !canary.settings.window.is_zero() => sides,
        Ok(Outcome::Switched(Leftover::Nothing)) if !canary.settings.window.is_zero() => {
            plan.printer.warn(
                "no traffic analysis on the swarm target: the swarm retires the old tasks itself, so there is nothing to switch back to",
            );
            return (Ok(Outcome::Switched(Leftover::Nothing)), None);
        }
        other => return (other, None),
    };
    let watched = match watch(plan, &sides, canary).await {
        Ok(w) => w,
        Err(e) => {
            plan.printer.warn(&format!(
                "cannot read Nginx's access log ({}); the release was not judged by its traffic",
                e.what
            ));
            return (Ok(Outcome::Switched(Leftover::Container(sides))), None);
        }
    };
    let (verdict, analysis) = watched;
    let failure = match &verdict {
        Some(Verdict::Failed(breach)) => Some(breach.describe()),
        Some(Verdict::TooLittle) if canary.load.is_some() => Some(format!(
            "the load test brought only {} requests through Nginx, fewer than DEPLOY_MIN_REQUESTS ({})",
            analysis.release.requests, canary.settings.min_requests
        )),
        _ => None,
    };
    if let Some(why) = failure {
        let failed = CtlError::failure(format!("the analysis failed: {why}"));
        return back(plan, sides, Outcome::RolledBack(failed), analysis).await;
    }
    match verdict {
        Some(Verdict::TooLittle) => {
            plan.printer.warn(&format!(
                "too little traffic to judge the release: {} requests in {}, fewer than DEPLOY_MIN_REQUESTS ({}); it passes unjudged",
                analysis.release.requests,
                humantime::format_duration(canary.settings.window),
                canary.settings.min_requests
            ));
            (Ok(Outcome::Switched(Leftover::Container(sides))), Some(analysis))
        }
        None => back(plan, sides, Outcome::Interrupted, analysis).await,
        Some(_) => {
            plan.printer.info(&format!(
                "analysis passed: {}",
                traffic::describe(&analysis.release, &analysis.baseline)
            ));
            (Ok(Outcome::Switched(Leftover::Container(sides))), Some(analysis))
        }
    }
}

/// Nginx back to the old container; `outcome` is what to record when that worked.
async fn back(
    plan: &Plan<'_>,
    sides: Box<Sides>,
    outcome: Outcome,
    analysis: Analysis,
) -> (Result<Outcome>, Option<Analysis>) {
    match rollout::switch_back(plan, &sides).await {
        Ok(()) => (Ok(outcome), Some(analysis)),
        Err(e) => {
            let failed = CtlError::new(
                ExitStatus::RollbackFailed,
                "the new release failed its analysis and switching back failed",
            )
            .cause(e.what)
            .hint(format!(
                "see which container Nginx sends to: `pricescan-ctl status`; {} is the previous release",
                sides.old.name
            ));
            (Err(failed), Some(analysis))
        }
    }
}

/// The baseline, then the window (with the load, if any); the verdict and the record.
async fn watch(plan: &Plan<'_>, sides: &Sides, canary: &Canary<'_>) -> Result<(Option<Verdict>, Analysis)> {
    let settings = canary.settings;
    let containers = plan.engine.project_containers(&plan.project.name).await?;
    let nginx = super::nginx::running_nginx(&containers)
        .ok_or_else(|| CtlError::failure("Nginx is not running"))?
        .id
        .clone();
    let addresses_of = |id: &str| {
        let found = containers.iter().find(|c| c.id == id);
        traffic::upstreams(&found.map(|c| c.addresses.clone()).unwrap_or_default())
    };
    let window = i64::try_from(settings.window.as_nanos()).unwrap_or(i64::MAX);
    let from = sides.switched_at.saturating_sub(window);
    let before = traffic::between(
        plan.engine,
        &nginx,
        &addresses_of(&sides.old.id),
        from,
        sides.switched_at,
    )
    .await?;
    let limits = analysis::limits(settings, &before);
    announce(plan, settings, &limits, &before);
    let w = Watch {
        engine: plan.engine,
        printer: plan.printer,
        nginx,
        upstreams: addresses_of(&sides.new_id),
        from: sides.switched_at,
        settings,
        limits: limits.clone(),
        baseline: before.measured(),
    };
    let watched = with_load(&w, canary.load.as_ref(), plan.printer).await;
    let (verdict, breach) = match &watched.verdict {
        Some(Verdict::Failed(b)) => ("failed", Some(b.clone())),
        Some(Verdict::TooLittle) => ("too_little_traffic", None),
        Some(_) => ("passed", None),
        None => ("interrupted", None),
    };
    let record = Analysis {
        verdict: verdict.into(),
        window_s: settings.window.as_secs_f64(),
        watched_s: (watched.seconds * 10.0).round() / 10.0,
        release: watched.figures.measured(),
        baseline: before.measured(),
        limits,
        breach,
    };
    Ok((watched.verdict, record))
}

fn announce(plan: &Plan<'_>, settings: &AnalysisSettings, limits: &analysis::Limits, before: &Figures) {
    let p95 = limits.p95_ms.map_or(
        "p95 not judged (no baseline; set DEPLOY_MAX_P95)".to_string(),
        |l| format!("p95 above {l:.0} ms"),
    );
    plan.printer.info(&format!(
        "watching the new release's traffic for {}: it fails above {:.2} % 5xx or {p95}; the old release stays ready (before the switch: {} requests)",
        humantime::format_duration(settings.window),
        limits.error_ratio * 100.0,
        before.requests
    ));
}

/// The watch, with the load test driven beside it until the watch ends.
async fn with_load(w: &Watch<'_>, load: Option<&LoadSpec>, printer: &crate::output::Printer) -> Watched {
    let Some(spec) = load else {
        return traffic::watch(w, signalled()).await;
    };
    let (done, ended) = tokio::sync::oneshot::channel::<()>();
    let watching = async {
        let watched = traffic::watch(w, signalled()).await;
        let _ = done.send(());
        watched
    };
    let mut quiet = |_: &crate::load::report::Tally, _: f64| {};
    let loading = generate::run(spec, async { ended.await.unwrap_or(()) }, &mut quiet);
    let (watched, ran) = tokio::join!(watching, loading);
    match ran {
        Ok(ran) => printer.info(&format!(
            "load test: {} requests to {} ({} failed)",
            ran.tally.requests(),
            spec.url,
            ran.tally.errors()
        )),
        Err(e) => printer.warn(&format!("the load test did not run: {}", e.what)),
    }
    watched
}

async fn signalled() {
    crate::sys::signals::received().await;
}
