//! A MySQL restore through a shadow schema (DESIGN §8): the dump is loaded into
//! `<db>__restore` while the old data keeps serving, its row counts are checked there, and
//! only then is it swapped in with one `RENAME TABLE`, atomic in MySQL and MariaDB. Views,
//! routines and events cannot move between schemas and triggers block a move, so the
//! backup's are created again in the live schema during the swap, and the replaced data's go.

use crate::backup::catalog::OnDisk;
use crate::engine::Engine;
use crate::error::{CtlError, Result};
use std::time::Duration;

/// How long the swap may take: renames and DDL, not data.
const SWAP_DEADLINE: Duration = Duration::from_secs(300);

/// Shell prelude shared by the scripts: names of the schemas, and a quiet root client whose
/// password comes from the container's environment (never argv).
const PRELUDE: &str = concat!(
    "set -e\nexport MYSQL_PWD=",
    crate::backup::root_sql::root_password!(),
    "\n",
    r#"db="$MYSQL_DATABASE"; shadow="${db}__restore"; old="${db}__replaced"
q() { mysql -uroot -h127.0.0.1 -N -B -e "$1"; }
"#
);

/// Ends every other root session: a loader or a swap cut off by a signal may still be
/// feeding statements (the API logs in as its own user and is not touched).
const END_SESSIONS: &str = r#"for id in $(q "SELECT ID FROM information_schema.PROCESSLIST WHERE USER='root' AND ID<>CONNECTION_ID() AND COMMAND<>'Daemon'"); do
  q "KILL $id" 2>/dev/null || true
done
"#;

/// Drops what an earlier restore may have left (the shadow, replaced tables that were put
/// back from the pre-restore backup since).
const DROP_LEFTOVERS: &str = r#"q "DROP DATABASE IF EXISTS \`$shadow\`"
q "DROP DATABASE IF EXISTS \`$old\`"
"#;

/// The dump names its database only in CREATE DATABASE and USE lines; they are pointed at
/// the shadow as the stream passes. The load stays out of the binary log: it is a copy of
/// old data, not new history, and would double the log by the database's size.
const LOAD: &str = r#"sed -e "s|^CREATE DATABASE \(.*\)\`$db\`|CREATE DATABASE \1\`$shadow\`|" -e "s|^USE \`$db\`;\$|USE \`$shadow\`;|" | mysql -uroot -h127.0.0.1 --init-command='SET SESSION sql_log_bin=0'
"#;

/// The swap. The backup's triggers, routines, events and views are dumped from the shadow
/// first; triggers go on both sides; one RENAME TABLE moves the live tables out and the
/// restored ones in; the replaced data's views, routines and events go, the backup's come in.
const SWAP: &str = r#"objects=/tmp/pricescan-restore-objects.sql
dump() { mysqldump -uroot -h127.0.0.1 --skip-comments --no-tablespaces "$@"; }
dump --no-data --no-create-info --triggers --routines --events "$shadow" > "$objects"
views=$(q "SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA='$shadow'")
[ -z "$views" ] || dump --no-data --skip-triggers "$shadow" $views >> "$objects"
q "SELECT CONCAT('\`', TRIGGER_SCHEMA, '\`.\`', TRIGGER_NAME, '\`') FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA IN ('$db', '$shadow')" > /tmp/pricescan-triggers
while IFS= read -r t; do q "DROP TRIGGER $t"; done < /tmp/pricescan-triggers
tables() { q "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA='$1' AND TABLE_TYPE='BASE TABLE'"; }
tables "$db" > /tmp/pricescan-live-tables
tables "$shadow" > /tmp/pricescan-shadow-tables
renames=""
add() { renames="${renames:+$renames, }\`$1\`.\`$3\` TO \`$2\`.\`$3\`"; }
while IFS= read -r t; do add "$db" "$old" "$t"; done < /tmp/pricescan-live-tables
while IFS= read -r t; do add "$shadow" "$db" "$t"; done < /tmp/pricescan-shadow-tables
q "DROP DATABASE IF EXISTS \`$old\`"
q "CREATE DATABASE \`$old\`"
[ -z "$renames" ] || q "RENAME TABLE $renames"
q "SELECT CONCAT('\`$db\`.\`', TABLE_NAME, '\`') FROM information_schema.VIEWS WHERE TABLE_SCHEMA='$db'" > /tmp/pricescan-drop
while IFS= read -r x; do q "DROP VIEW $x"; done < /tmp/pricescan-drop
q "SELECT CONCAT(ROUTINE_TYPE, ' \`$db\`.\`', ROUTINE_NAME, '\`') FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA='$db'" > /tmp/pricescan-drop
while IFS= read -r x; do q "DROP $x"; done < /tmp/pricescan-drop
q "SELECT CONCAT('\`$db\`.\`', EVENT_NAME, '\`') FROM information_schema.EVENTS WHERE EVENT_SCHEMA='$db'" > /tmp/pricescan-drop
while IFS= read -r x; do q "DROP EVENT $x"; done < /tmp/pricescan-drop
mysql -uroot -h127.0.0.1 "$db" < "$objects"
q "DROP DATABASE \`$old\`"
q "DROP DATABASE \`$shadow\`"
rm -f "$objects" /tmp/pricescan-triggers /tmp/pricescan-live-tables /tmp/pricescan-shadow-tables /tmp/pricescan-drop
"#;

/// The shadow schema of database `db`.
pub fn schema(db: &str) -> String {
    format!("{db}__restore")
}

/// Names the scripts can carry: MySQL's 64-character limit with our suffixes, and nothing
/// that would need quoting in sed or SQL.
pub fn check_database(db: &str) -> Result<()> {
    let plain = !db.is_empty()
        && db
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$');
    match plain && db.len() <= 54 {
        true => Ok(()),
        false => Err(CtlError::failure(format!(
            "restore cannot stage database {db:?} in a shadow schema: use a name of at most 54 letters, digits, _ or -"
        ))),
    }
}

/// Loads the backup's dump into the shadow schema; `started` hears the loader's exec id.
pub async fn load(
    engine: &Engine,
    mysql: &str,
    b: &OnDisk,
    started: &mut (dyn FnMut(&str) + Send),
) -> Result<()> {
    let prepare = format!("{END_SESSIONS}{DROP_LEFTOVERS}");
    run(engine, mysql, &prepare, "cannot prepare the shadow schema").await?;
    let decoder = crate::backup::catalog::dump_reader(b).await?;
    let script = format!("{PRELUDE}{LOAD}");
    let (code, _, stderr) = engine
        .exec_with_input_as(mysql, &["sh", "-c", &script], decoder, |_| {}, started)
        .await?;
    match code {
        0 => Ok(()),
        _ => Err(CtlError::failure("loading the dump into the shadow schema failed").cause(stderr.trim())),
    }
}

/// Swaps the shadow's tables in (the API is stopped meanwhile); `started` hears the exec id.
pub async fn swap(engine: &Engine, mysql: &str, started: &mut (dyn FnMut(&str) + Send)) -> Result<()> {
    let script = format!("{PRELUDE}{SWAP}");
    let cmd = ["sh", "-c", script.as_str()];
    let run = engine.exec_with_input_as(mysql, &cmd, tokio::io::empty(), |_| {}, started);
    let (code, _, stderr) = tokio::time::timeout(SWAP_DEADLINE, run)
        .await
        .map_err(|_| crate::engine::deadline_error("the swap of the restored tables", SWAP_DEADLINE))??;
    match code {
        0 => Ok(()),
        _ => Err(CtlError::failure("swapping the restored tables in failed").cause(stderr.trim())),
    }
}

/// Every base table's exact row count in `schema` (after a replay, what the swap must bring).
pub async fn row_counts(
    engine: &Engine,
    mysql: &str,
    schema: &str,
) -> Result<std::collections::BTreeMap<String, u64>> {
    let body = format!(
        r#"for t in $(q "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA='{schema}' AND TABLE_TYPE='BASE TABLE'"); do
  printf '%s	%s
' "$t" "$(q "SELECT COUNT(*) FROM \`{schema}\`.\`$t\`")"
done
"#
    );
    let script = format!("{PRELUDE}{body}");
    let out = engine.exec(mysql, &["sh", "-c", &script]).await?;
    if out.exit_code != 0 {
        return Err(CtlError::failure(format!("cannot count the rows in {schema}")).cause(out.stderr.trim()));
    }
    Ok(out
        .stdout
        .lines()
        .filter_map(|l| {
            let (t, n) = l.split_once('\t')?;
            Some((t.to_string(), n.trim().parse().ok()?))
        })
        .collect())
}

/// Ends the other root sessions, so that a cut-off loader or swap stops touching data.
pub async fn end_sessions(engine: &Engine, mysql: &str) -> Result<()> {
    run(engine, mysql, END_SESSIONS, "cannot end the other MySQL sessions").await
}

/// Drops the shadow schema and any replaced tables left behind.
pub async fn discard(engine: &Engine, mysql: &str) -> Result<()> {
    run(engine, mysql, DROP_LEFTOVERS, "cannot drop the shadow schema").await
}

async fn run(engine: &Engine, mysql: &str, body: &str, what: &str) -> Result<()> {
    let script = format!("{PRELUDE}{body}");
    let out = engine.exec(mysql, &["sh", "-c", &script]).await?;
    match out.exit_code {
        0 => Ok(()),
        _ => Err(CtlError::failure(what.to_string()).cause(out.stderr.trim())),
    }
}
