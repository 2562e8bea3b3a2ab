//! Named points where a run can be killed on purpose, to test resuming: with
//! `CURATE_KILL_AT=TASK:POINT` in the environment (for example `map-00001:mid`,
//! `near:mid`, `finalize:shards`), the process sends itself SIGKILL when it reaches
//! that point, as a crash or an out-of-memory kill would end it. Unset, a point costs
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
        if let Some(t) = target()
            && t.split_once(':') == Some((self.task, point))
        {
            let _ = std::process::Command::new("kill").args(["-KILL", &std::process::id().to_string()]).status();
            // SIGKILL is delivered before `kill` returns; never go on.
            loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        }
    }
}
