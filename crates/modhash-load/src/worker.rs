//! The worker side of isolation: what `modhash-worker` runs.
//!
//! It lives in the library, not in the binary, so that the protocol, the
//! lockdown and the in-process loader stay private to this crate: the
//! binary calls [`main`] and nothing else. The host side is
//! [`isolated`](crate::isolated); `docs/isolation.md` describes both.
//!
//! In order, the worker:
//!
//! 1. asks for `SIGKILL` when the host dies (`PR_SET_PDEATHSIG`), and exits
//!    if the host already died before that took effect;
//! 2. receives the `Hello` frame: protocol version, sandbox policy, instance
//!    configuration, and the sealed module memfd;
//! 3. checks the memfd's seals, then locks itself down — before any code of
//!    the module runs, its constructors included;
//! 4. `dlopen`s the sealed image, creates the instance, answers `Ready`;
//! 5. serves `Call` frames until `Shutdown` or until the host goes away.
//!
//! Startup failures are reported in a `Fatal` frame.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::process::ExitCode;

use rustix::process::Signal;

use crate::inprocess::InProcess;
use crate::memfd::SealedImage;
use crate::protocol::{self, FatalStage, FrameReader, IoError, Kind, Violation};
use crate::sandbox;

/// stdin: the worker's end of the socket pair.
const SOCKET_FD: i32 = 0;
/// stderr: a pipe the host forwards to its own stderr.
const STDERR_FD: i32 = 2;

/// Exit status when the host died before the worker was ready.
const EXIT_ORPHANED: u8 = 3;
/// Exit status after a `Fatal` frame, or when the host broke the protocol.
const EXIT_FAILED: u8 = 4;

/// The whole worker program. Only `modhash-worker` calls it, as its
/// `main`, in a process a host started (it takes over fd 0).
pub fn main() -> ExitCode {
    let Some(host) = host_pid() else {
        eprintln!("modhash-worker: started without --host-pid; this program is started by modhash hosts, not by hand");
        return ExitCode::from(EXIT_FAILED);
    };
    // Die with the host. The signal is armed for the parent that exists now,
    // so if the host died before this call, the worker was reparented and
    // must exit on its own.
    if rustix::process::set_parent_process_death_signal(Some(Signal::KILL)).is_err()
        || rustix::process::getppid().map(|pid| pid.as_raw_nonzero().get()) != Some(host)
    {
        return ExitCode::from(EXIT_ORPHANED);
    }
    // SAFETY: the host passes the socket as fd 0, and this function, called
    // once as the worker's `main`, is the only code that uses stdin, so this
    // is the fd's only owner.
    let socket = unsafe { OwnedFd::from_raw_fd(SOCKET_FD) };
    match run(socket.as_fd()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Stop::HostGone) => ExitCode::SUCCESS,
        Err(Stop::Failed(stage, message)) => {
            let mut body = vec![stage as u8];
            body.extend_from_slice(message.as_bytes());
            // Best effort: if the host is gone there is no one to tell.
            let _ = protocol::send_frame(socket.as_fd(), Kind::Fatal, 0, 0, &[&body], None);
            eprintln!("modhash-worker: {message}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// Why serving ended early.
enum Stop {
    /// The host closed the socket.
    HostGone,
    /// A startup stage failed, with a message for the host.
    Failed(FatalStage, String),
}

impl From<IoError> for Stop {
    fn from(error: IoError) -> Self {
        match error {
            IoError::Closed => Stop::HostGone,
            other => Stop::Failed(FatalStage::Protocol, other.to_string()),
        }
    }
}

impl From<Violation> for Stop {
    fn from(error: Violation) -> Self {
        Stop::Failed(FatalStage::Protocol, error.to_string())
    }
}

fn run(socket: BorrowedFd<'_>) -> Result<(), Stop> {
    let (body, memfd) = protocol::recv_hello(socket)?;
    let protocol::Hello {
        policy,
        spin,
        config,
    } = protocol::decode_hello(&body)?;
    // Non-blocking, so the reader can spin for the next call; set before
    // the lockdown, which allows no ioctl.
    rustix::io::ioctl_fionbio(socket, true)
        .map_err(|e| Stop::Failed(FatalStage::Protocol, e.to_string()))?;
    let image = SealedImage::from_sealed(memfd)
        .map_err(|e| Stop::Failed(FatalStage::Image, e.to_string()))?;

    let keep = [SOCKET_FD, STDERR_FD, image.fd().as_raw_fd()];
    let report = sandbox::lock_down(&policy, &keep)
        .map_err(|e| Stop::Failed(FatalStage::Lockdown, e.to_string()))?;
    for warning in &report.warnings {
        eprintln!("modhash-worker: warning: {warning}");
    }

    // From here on, module code runs: its constructors first.
    let module = InProcess::open(image, config)
        .map_err(|e| Stop::Failed(FatalStage::Load, e.to_string()))?;

    let ready = protocol::encode_ready(&report, module.name())?;
    protocol::send_frame(socket, Kind::Ready, 0, 0, &[&ready], None)?;

    let mut reader = FrameReader::with_spin(spin);
    loop {
        let frame = reader.recv(socket, None)?;
        match frame.kind {
            Kind::Call => {
                let (method, input) = protocol::parse_call(&frame.body)?;
                let result = module.call(method, input);
                let (status, prefix) = protocol::encode_reply(&result);
                let output = result.as_deref().unwrap_or_default();
                protocol::send_frame(
                    socket,
                    Kind::Reply,
                    status,
                    frame.id,
                    &[&prefix, output],
                    None,
                )?;
            }
            Kind::Shutdown => {
                // Destroy the instance and unload the module before saying
                // goodbye by exiting.
                drop(module);
                return Ok(());
            }
            other => {
                return Err(Violation::Unexpected {
                    expected: Kind::Call,
                    got: other,
                }
                .into());
            }
        }
    }
}

/// The `--host-pid N` argument.
fn host_pid() -> Option<i32> {
    let mut args = std::env::args().skip(1);
    match (args.next().as_deref(), args.next()) {
        (Some("--host-pid"), Some(pid)) => pid.parse().ok(),
        _ => None,
    }
}
