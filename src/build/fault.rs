//! Named points where a run can be killed on purpose, to test resuming: with
//! `CURATE_KILL_AT=TASK:POINT` in the environment (for example `map-00001:mid`,
//! `near:mid`, `finalize:shards`, or `ID:start` for any task), the process sends itself
//! SIGKILL when it reaches that point, as a crash or an out-of-memory kill would end it.
//! `TASK:POINT:once=PATH` kills only while PATH does not exist, and makes it first, so
//! a task that is run again (by an executor's retry) goes through. `TASK:POINT:pause=DIR`
//! does not kill: the first try of each matching task writes its process id to
//! `DIR/TASK.pid` and waits (at most ten minutes) until `DIR/release` or
//! `DIR/TASK.release` exists, so that a
//! test can kill the node that runs it. A TASK ending in `*` matches every task id with
//! that prefix (`map-*`). Unset, a point costs one comparison.

use std::sync::OnceLock;

fn target() -> Option<&'static str> {
    static T: OnceLock<Option<String>> = OnceLock::new();
    T.get_or_init(|| std::env::var("CURATE_KILL_AT").ok().filter(|s| !s.is_empty())).as_deref()
}

/// The kill points of one task.
pub struct Point<'a> {
    task: &'a str,
}

impl<'a> Point<'a> {
    pub fn new(task: &'a str) -> Point<'a> {
        Point { task }
    }

    /// Die here when asked to.
    pub fn hit(&self, point: &str) {
        let Some(t) = target() else { return };
        let mut parts = t.splitn(3, ':');
        let task_matches = |pattern: &str| match pattern.strip_suffix('*') {
            Some(prefix) => self.task.starts_with(prefix),
            None => pattern == self.task,
        };
        if !parts.next().is_some_and(task_matches) || parts.next() != Some(point) {
            return;
        }
        let action = parts.next().unwrap_or("");
        if let Some(dir) = action.strip_prefix("pause=") {
            pause(std::path::Path::new(dir), self.task);
            return;
        }
        if let Some(once) = action.strip_prefix("once=")
            && std::fs::OpenOptions::new().write(true).create_new(true).open(once).is_err()
        {
            return;
        }
        {
            let _ = std::process::Command::new("kill").args(["-KILL", &std::process::id().to_string()]).status();
            // SIGKILL is delivered before `kill` returns; never go on.
            loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        }
    }
}

/// Wait at a point on the first try of a task (see the module's documentation).
fn pause(dir: &std::path::Path, task: &str) {
    use std::io::Write;
    let Ok(mut f) = std::fs::OpenOptions::new().write(true).create_new(true).open(dir.join(format!("{task}.pid"))) else {
        return;
    };
    let _ = writeln!(f, "{}", std::process::id());
    drop(f);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    let own = dir.join(format!("{task}.release"));
    while !dir.join("release").exists() && !own.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
