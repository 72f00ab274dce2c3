//! SIGTERM and SIGINT stop a writing command between steps instead of killing it: the signal is
//! noted, the running source-days finish, no new one starts, and the command writes its run
//! record and releases the warehouse lock before exiting (3 for SIGTERM, 130 for SIGINT). A second
//! signal ends the process at once. A query already running in the engine finishes first.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::error::Error;

static RECEIVED: AtomicUsize = AtomicUsize::new(0);
static ARMED: AtomicBool = AtomicBool::new(false);

/// Handle SIGTERM and SIGINT as above (the binary calls this; a library user keeps the defaults).
pub fn install() {
    use signal_hook::consts::signal::{SIGINT, SIGTERM};
    for (sig, code) in [(SIGTERM, 143), (SIGINT, 130)] {
        // Order matters: the shutdown reads the flag the previous signal set.
        let _ = signal_hook::flag::register_conditional_shutdown(sig, code, &ARMED);
        let _ = signal_hook::flag::register_usize(sig, &RECEIVED, sig as usize);
        let _ = signal_hook::flag::register(sig, &ARMED);
    }
}

/// The stop requested by a signal, if any.
pub fn check() -> Result<(), Error> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => Ok(()),
        s if s == signal_hook::consts::signal::SIGINT as usize => Err(Error::Interrupted("SIGINT")),
        _ => Err(Error::Interrupted("SIGTERM")),
    }
}
