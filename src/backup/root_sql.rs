//! The root `mysql` client inside MySQL's container. Its password comes from the container's
//! own environment (or the secret file on swarm), never from argv or pricescan-ctl's output.
//! Over TCP: the image's first-start server listens on the socket only, so TCP answers once
//! initialisation is over.

/// The shell text that yields the root password in MySQL's container.
macro_rules! root_password {
    () => {
        "\"${MYSQL_ROOT_PASSWORD:-$(cat \"$MYSQL_ROOT_PASSWORD_FILE\")}\""
    };
}
pub(crate) use root_password;

/// A command prefix: `{ROOT_PWD} mysqldump ...`.
pub const ROOT_PWD: &str = concat!("MYSQL_PWD=", root_password!());
/// The client as root.
pub const ROOT_CLIENT: &str = concat!("MYSQL_PWD=", root_password!(), " mysql -uroot -h127.0.0.1");
/// The client as root, as the script's last command (its stdin is the caller's).
pub const ROOT_CLIENT_EXEC: &str = concat!("MYSQL_PWD=", root_password!(), " exec mysql -uroot -h127.0.0.1");
/// One statement, its rows tab-separated without headers. `sql` holds no single quote.
pub fn query(sql: &str) -> String {
    format!("{ROOT_CLIENT} -N -B -e '{sql}'")
}
