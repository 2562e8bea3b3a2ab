//! Named points where a run can be killed on purpose, to test resuming: with
//! `CURATE_KILL_AT=TASK:POINT` in the environment (for example `map-00001:mid`,
//! `near:mid`, `finalize:shards`, or `ID:start` for any task), the process sends itself
//! SIGKILL when it reaches that point, as a crash or an out-of-memory kill would end it.
//! `TASK:POINT:once=PATH` kills only while PATH does not exist, and makes it first, so
//! a task that is run again (by an executor's retry) goes through. Unset, a point costs
//! one comparison.

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
        if parts.next() != Some(self.task) || parts.next() != Some(point) {
            return;
        }
        if let Some(once) = parts.next().and_then(|o| o.strip_prefix("once=")) {
            if std::fs::OpenOptions::new().write(true).create_new(true).open(once).is_err() {
                return;
            }
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
