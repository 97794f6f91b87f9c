//! The live progress line on stderr while a run goes: phase, time, connections set
//! up and failed, and what is sent and received with their current rates. Drawn with
//! indicatif only when stderr is a terminal; nothing at all otherwise (pipes, CI,
//! `--json` captured by a script).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::clock;
use super::live::{Live, Phase, Totals};
use super::report::thousands;

const TICK: Duration = Duration::from_millis(250);

/// The running progress line; `finish` clears it.
pub struct Progress {
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Start drawing when stderr is a terminal.
    pub fn start(live: Arc<Live>, duration: Duration) -> Progress {
        let done = Arc::new(AtomicBool::new(false));
        if !std::io::stderr().is_terminal() {
            return Progress { done, thread: None };
        }
        let flag = done.clone();
        let thread = std::thread::Builder::new()
            .name("bench-progress".into())
            .spawn(move || draw(&live, duration, &flag))
            .ok();
        Progress { done, thread }
    }

    pub fn finish(mut self) {
        self.done.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn draw(live: &Live, duration: Duration, done: &AtomicBool) {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let mut last = (Instant::now(), Totals::default());
    while !done.load(Ordering::Acquire) {
        std::thread::sleep(TICK);
        let now = Instant::now();
        let totals = live.totals();
        let secs = now.duration_since(last.0).as_secs_f64().max(1e-3);
        let sent_rate = (totals.sent - last.1.sent.min(totals.sent)) as f64 / secs;
        let received_rate = (totals.received - last.1.received.min(totals.received)) as f64 / secs;
        last = (now, totals);
        let (phase, since_ns) = live.phase();
        let in_phase = clock::now_ns().saturating_sub(since_ns) as f64 / 1e9;
        let clock_text = match phase {
            Phase::Running => format!("{in_phase:.1}/{:.0}s", duration.as_secs_f64()),
            _ => format!("{in_phase:.1}s"),
        };
        let target = live.setup_target.load(Ordering::Relaxed);
        bar.set_message(format!(
            "{} {clock_text} | ready {}/{} | failed {} | {} {} ({}/s) | {} {} ({}/s)",
            phase.name(),
            thousands(totals.ready),
            thousands(target),
            thousands(totals.failed),
            live.sent_label,
            thousands(totals.sent),
            thousands(sent_rate as u64),
            live.received_label,
            thousands(totals.received),
            thousands(received_rate as u64),
        ));
        bar.tick();
    }
    bar.finish_and_clear();
}
