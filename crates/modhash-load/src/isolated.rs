//! The host side of isolation: a module running in a sandboxed
//! `modhash-worker` process, called exactly like an in-process one.
//!
//! [`Isolated::spawn`] starts the worker with its end of a socket pair as
//! stdin and a pipe as stderr, hands it the sealed module memfd and the
//! sandbox policy, and waits for `Ready`. Each [`Isolated::call`] is one
//! `Call`/`Reply` exchange with a request id and a deadline. When the worker
//! dies, hangs, or breaks the protocol, the call returns a [`CallError`]
//! saying which (crashed, timed out, limit exceeded, denied), the worker is
//! killed and reaped, and the module stays down until [`Isolated::restart`].
//! Dropping an `Isolated` asks the worker to shut down, and kills it if it
//! does not within [`SHUTDOWN_GRACE`].
//!
//! The worker's stderr is forwarded to the host's stderr, prefixed with
//! `modhash-worker[PID]:`, so its warnings (a kernel without landlock) and
//! a crashing module's last words are never silent; the last lines are
//! also kept for the error a crash produces. The module controls that
//! output, so it is bounded and escaped ([`StderrLimits`]).

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};
use rustix::process::{Pid, Signal};

use crate::call_error::{CallError, Limit};
use crate::escape::escaped;
use crate::memfd::SealedImage;
use crate::protocol::{self, FatalStage, FrameReader, IoError, Kind, Violation};
use crate::sandbox::{Landlock, SandboxPolicy, SandboxReport};
use crate::stderr::Forwarder;

pub use crate::stderr::StderrLimits;

/// The worker executable's file name, looked up next to the host's
/// executable unless [`WorkerConfig::worker`] says where it is.
pub const WORKER_NAME: &str = "modhash-worker";

/// How long a dropped module's worker gets to destroy its instance and exit
/// before it is killed.
pub const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// How long a worker that closed its socket gets to finish dying before it
/// is killed, so that its own cause of death is the one reported.
const EXIT_GRACE: Duration = Duration::from_millis(200);

/// Default busy-wait for a frame, on each side (see [`WorkerConfig::spin`]).
pub const DEFAULT_SPIN: Duration = Duration::from_micros(50);

/// Default time a single call may take.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Default time the worker may take to lock down, load the module and
/// answer `Ready`.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(10);

/// How to run isolated modules.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WorkerConfig {
    /// The worker executable; `None` looks for [`WORKER_NAME`] in the
    /// directory of the host's executable.
    pub worker: Option<PathBuf>,
    /// Longest a call may take before the worker is killed; `None` waits
    /// for ever (the sandbox's CPU-time limit still applies).
    pub call_timeout: Option<Duration>,
    /// Longest the worker may take to start.
    pub start_timeout: Duration,
    /// What the worker may do.
    pub sandbox: SandboxPolicy,
    /// How much of the worker's stderr reaches the host's.
    pub stderr: StderrLimits,
    /// How long the host busy-waits for a reply, and the worker for the
    /// next call, before sleeping (at most 1 ms; the spin shrinks while
    /// frames take longer). Waking a sleeping process costs tens of
    /// microseconds on an idle machine; `Duration::ZERO` never spins.
    pub spin: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            worker: None,
            call_timeout: Some(DEFAULT_CALL_TIMEOUT),
            start_timeout: DEFAULT_START_TIMEOUT,
            sandbox: SandboxPolicy::default(),
            stderr: StderrLimits::default(),
            spin: DEFAULT_SPIN,
        }
    }
}

impl WorkerConfig {
    /// The worker executable this configuration runs.
    pub(crate) fn worker_path(&self) -> std::io::Result<PathBuf> {
        match &self.worker {
            Some(path) => Ok(path.clone()),
            None => default_worker_path(),
        }
    }
}

/// Why a worker could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// The worker executable was not found or could not be run.
    #[error("cannot run the isolation worker {path}: {source}; install {WORKER_NAME} next to the host executable or set WorkerConfig::worker")]
    Exec {
        /// The path tried.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Creating the socket pair, pipe or frames failed.
    #[error("cannot set up the isolation worker: {0}")]
    Setup(#[source] std::io::Error),
    /// The worker reported that a startup stage failed.
    #[error("the isolation worker could not {}: {message}", stage_action(*.stage))]
    Worker {
        /// Which stage.
        stage: FatalStage,
        /// The worker's message.
        message: String,
    },
    /// The worker died or hung while starting: typically the module's
    /// constructors did something the sandbox forbids, or crashed.
    #[error("the isolated module failed while loading: {0}")]
    Died(#[source] CallError),
}

fn stage_action(stage: FatalStage) -> &'static str {
    match stage {
        FatalStage::Image => "read the sealed module image",
        FatalStage::Lockdown => "lock itself down",
        FatalStage::Load => "load the module",
        _ => "understand the host",
    }
}

/// A module running in a sandboxed worker process.
#[derive(Debug)]
pub struct Isolated {
    /// The sealed image, kept to start a new worker on restart.
    image: SealedImage,
    /// The instance configuration, likewise.
    config: Vec<u8>,
    settings: WorkerConfig,
    name: String,
    state: Mutex<State>,
}

#[derive(Debug)]
enum State {
    Running(Worker),
    /// The worker failed; calls fail until a restart.
    Down,
}

/// One running worker process.
#[derive(Debug)]
struct Worker {
    pid: Pid,
    socket: OwnedFd,
    reader: FrameReader,
    next_id: u64,
    report: SandboxReport,
    stderr: Forwarder,
}

impl Isolated {
    /// Start a worker for `image` and create its instance with `config`.
    pub fn spawn(
        image: SealedImage,
        config: &[u8],
        settings: WorkerConfig,
    ) -> Result<Self, SpawnError> {
        let (worker, name) = Worker::start(&image, config, &settings)?;
        Ok(Self {
            image,
            config: config.to_vec(),
            settings,
            name,
            state: Mutex::new(State::Running(worker)),
        })
    }

    /// The name the module reported.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the current worker's sandbox enforces; `None` while the worker
    /// is down.
    pub fn sandbox_report(&self) -> Option<SandboxReport> {
        match &*self.lock() {
            State::Running(worker) => Some(worker.report.clone()),
            State::Down => None,
        }
    }

    /// The current worker's process id; `None` while it is down.
    pub fn worker_pid(&self) -> Option<u32> {
        match &*self.lock() {
            State::Running(worker) => u32::try_from(worker.pid.as_raw_nonzero().get()).ok(),
            State::Down => None,
        }
    }

    /// Call `method` with `input` in the worker. Calls on one module are
    /// serialised.
    pub fn call(&self, method: u32, input: &[u8]) -> Result<Vec<u8>, CallError> {
        let mut state = self.lock();
        let State::Running(worker) = &mut *state else {
            return Err(CallError::WorkerDown);
        };
        match worker.call(method, input, self.settings.call_timeout) {
            Ok(answer) => Ok(answer?),
            Err(fault) => {
                let State::Running(worker) = std::mem::replace(&mut *state, State::Down) else {
                    return Err(CallError::WorkerDown);
                };
                Err(worker.fail(fault, &self.settings.sandbox))
            }
        }
    }

    /// Replace the worker with a fresh one (after a failure, or to reset
    /// the module's state). The old worker, if any, is shut down first.
    pub fn restart(&self) -> Result<(), SpawnError> {
        let mut state = self.lock();
        if let State::Running(worker) = std::mem::replace(&mut *state, State::Down) {
            worker.shutdown();
        }
        let (worker, _name) = Worker::start(&self.image, &self.config, &self.settings)?;
        *state = State::Running(worker);
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Isolated {
    fn drop(&mut self) {
        let state = std::mem::replace(
            self.state.get_mut().unwrap_or_else(PoisonError::into_inner),
            State::Down,
        );
        if let State::Running(worker) = state {
            worker.shutdown();
        }
    }
}

/// What went wrong in an exchange with the worker, before the cause of
/// death is known.
#[derive(Debug)]
enum Fault {
    TimedOut(Duration),
    Io(IoError),
}

impl Worker {
    fn start(
        image: &SealedImage,
        config: &[u8],
        settings: &WorkerConfig,
    ) -> Result<(Self, String), SpawnError> {
        let path = settings.worker_path().map_err(SpawnError::Setup)?;
        let setup = |e: rustix::io::Errno| SpawnError::Setup(e.into());
        let (host_end, worker_end) = socketpair(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::CLOEXEC,
            None,
        )
        .map_err(setup)?;
        let (stderr_read, stderr_write) =
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(setup)?;
        let host_pid = rustix::process::getpid().as_raw_nonzero().get();
        let mut command = Command::new(&path);
        command
            .arg("--host-pid")
            .arg(host_pid.to_string())
            // Nothing from the host's environment (LD_PRELOAD and friends)
            // reaches the worker.
            .env_clear()
            .stdin(Stdio::from(worker_end))
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr_write));
        // `command` (and with it the worker's ends of the socket and pipe)
        // is dropped inside `spawn_from_spawner`, once the child has them.
        let pid = spawn_from_spawner(command).map_err(|source| SpawnError::Exec {
            path: path.clone(),
            source,
        })?;
        // A pidfd names this very process even after it is reaped, so the
        // stderr forwarder can kill a flooding worker without racing pid
        // reuse. If it cannot be had, kill the worker: unbounded output
        // must not be the price of an old kernel (pidfds need Linux 5.3).
        let pidfd = match rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()) {
            Ok(pidfd) => pidfd,
            Err(errno) => {
                let _ = rustix::process::kill_process(pid, Signal::KILL);
                let _ = wait4(pid, 0);
                return Err(setup(errno));
            }
        };
        rustix::io::ioctl_fionbio(&host_end, true).map_err(setup)?;

        let stderr = Forwarder::start(stderr_read, pid, pidfd, settings.stderr);
        let mut worker = Self {
            pid,
            socket: host_end,
            reader: FrameReader::with_spin(settings.spin),
            next_id: 1,
            report: SandboxReport {
                landlock: Landlock::Unavailable,
                seccomp: false,
                warnings: Vec::new(),
            },
            stderr,
        };
        match worker.handshake(image, config, settings) {
            Ok(name) => Ok((worker, name)),
            Err(Handshake::Fatal(stage, message)) => {
                worker.reap(EXIT_GRACE);
                Err(SpawnError::Worker { stage, message })
            }
            Err(Handshake::Fault(fault)) => {
                Err(SpawnError::Died(worker.fail(fault, &settings.sandbox)))
            }
        }
    }

    fn handshake(
        &mut self,
        image: &SealedImage,
        config: &[u8],
        settings: &WorkerConfig,
    ) -> Result<String, Handshake> {
        let deadline = Instant::now() + settings.start_timeout;
        let hello = protocol::encode_hello(&settings.sandbox, settings.spin, config)
            .map_err(|e| Handshake::Fault(Fault::Io(e.into())))?;
        protocol::send_hello(self.socket.as_fd(), &hello, image.fd())
            .map_err(|e| Handshake::Fault(Fault::Io(e)))?;
        let frame = match self.reader.recv(self.socket.as_fd(), Some(deadline)) {
            Ok(frame) => frame,
            Err(IoError::TimedOut) => {
                return Err(Handshake::Fault(Fault::TimedOut(settings.start_timeout)))
            }
            Err(error) => return Err(Handshake::Fault(Fault::Io(error))),
        };
        let protocol_fault = |e: Violation| Handshake::Fault(Fault::Io(e.into()));
        match frame.kind {
            Kind::Ready => {
                let (report, name) = protocol::decode_ready(&frame.body).map_err(protocol_fault)?;
                self.report = report;
                Ok(name)
            }
            Kind::Fatal => {
                let (stage, message) = frame
                    .body
                    .split_first()
                    .map_or((FatalStage::Protocol, &[][..]), |(stage, message)| {
                        (FatalStage::from_byte(*stage), message)
                    });
                // It can quote the module (its `create` error, say).
                Err(Handshake::Fatal(stage, escaped(message)))
            }
            other => Err(protocol_fault(Violation::Unexpected {
                expected: Kind::Ready,
                got: other,
            })),
        }
    }

    /// One exchange. The outer error means the worker is unusable; the
    /// inner one is the module's own answer.
    fn call(
        &mut self,
        method: u32,
        input: &[u8],
        timeout: Option<Duration>,
    ) -> Result<Result<Vec<u8>, modhash_plugin::host::Failure>, Fault> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let deadline = timeout.map(|timeout| Instant::now() + timeout);
        let timed_out = |error| match error {
            IoError::TimedOut => Fault::TimedOut(timeout.unwrap_or_default()),
            other => Fault::Io(other),
        };
        let prefix = protocol::call_prefix(method);
        protocol::send_frame(
            self.socket.as_fd(),
            Kind::Call,
            0,
            id,
            &[&prefix, input],
            deadline,
        )
        .map_err(timed_out)?;
        let frame = self
            .reader
            .recv(self.socket.as_fd(), deadline)
            .map_err(timed_out)?;
        if frame.kind != Kind::Reply {
            return Err(Fault::Io(
                Violation::Unexpected {
                    expected: Kind::Reply,
                    got: frame.kind,
                }
                .into(),
            ));
        }
        if frame.id != id {
            return Err(Fault::Io(
                Violation::WrongId {
                    expected: id,
                    got: frame.id,
                }
                .into(),
            ));
        }
        let answer =
            protocol::decode_reply(frame.status, frame.body).map_err(|e| Fault::Io(e.into()))?;
        // The module wrote the message; the host will print it.
        Ok(answer.map_err(|mut failure| {
            failure.message = escaped(failure.message.as_bytes());
            failure
        }))
    }

    /// Reap a worker that failed (killing it unless it is already exiting
    /// on its own), and say why it failed.
    fn fail(mut self, fault: Fault, policy: &SandboxPolicy) -> CallError {
        let grace = match fault {
            // A closed socket means the worker is dying: let it finish, so
            // its own cause of death is what gets reported.
            Fault::Io(IoError::Closed | IoError::Os(_)) => EXIT_GRACE,
            _ => Duration::ZERO,
        };
        let exit = self.reap(grace);
        if self.stderr.flooded() {
            // The forwarder killed it: whatever the call saw, that is why.
            return CallError::LimitExceeded(Limit::Output);
        }
        match fault {
            Fault::TimedOut(after) => CallError::TimedOut(after),
            Fault::Io(IoError::Protocol(error)) => CallError::Protocol(error.into()),
            Fault::Io(_) => classify(exit, policy, self.stderr.tail()),
        }
    }

    /// Ask the worker to exit, give it [`SHUTDOWN_GRACE`], then make sure.
    fn shutdown(mut self) {
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        let asked = protocol::send_frame(
            self.socket.as_fd(),
            Kind::Shutdown,
            0,
            0,
            &[],
            Some(deadline),
        );
        self.reap(if asked.is_ok() {
            SHUTDOWN_GRACE
        } else {
            Duration::ZERO
        });
    }

    /// Wait up to `grace` for the worker to exit, then `SIGKILL` it, and
    /// reap it; join the stderr forwarder, which ends at the pipe's
    /// end-of-file.
    fn reap(&mut self, grace: Duration) -> Exit {
        let deadline = Instant::now() + grace;
        let exit = loop {
            if let Some(exit) = wait4(self.pid, libc::WNOHANG) {
                break exit;
            }
            if Instant::now() >= deadline {
                let _ = rustix::process::kill_process(self.pid, Signal::KILL);
                let mut exit = wait4(self.pid, 0).unwrap_or(Exit {
                    status: None,
                    max_rss: 0,
                    killed: false,
                });
                exit.killed = true;
                break exit;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        self.stderr.join();
        exit
    }
}

/// How a handshake failed.
enum Handshake {
    Fatal(FatalStage, String),
    Fault(Fault),
}

/// How a worker ended, and its peak memory.
#[derive(Debug, Clone, Copy)]
struct Exit {
    /// The raw wait status, or `None` if it could not be collected.
    status: Option<i32>,
    /// Peak resident set size in bytes.
    max_rss: u64,
    /// Whether the host had to kill it.
    killed: bool,
}

/// `wait4` for our worker; `None` while it is still running (`WNOHANG`).
fn wait4(pid: Pid, flags: i32) -> Option<Exit> {
    let mut status = 0;
    // SAFETY: all-zero is a valid `rusage` (plain integers).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our own child, reaped only here, and both
        // out-pointers point at live locals.
        let reaped =
            unsafe { libc::wait4(pid.as_raw_nonzero().get(), &mut status, flags, &mut usage) };
        if reaped == pid.as_raw_nonzero().get() {
            let max_rss = u64::try_from(usage.ru_maxrss)
                .unwrap_or(0)
                .saturating_mul(1024);
            return Some(Exit {
                status: Some(status),
                max_rss,
                killed: false,
            });
        }
        if reaped == 0 {
            return None;
        }
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            // Already reaped or not our child: nothing more to learn.
            return Some(Exit {
                status: None,
                max_rss: 0,
                killed: false,
            });
        }
    }
}

/// Turn a dead worker's exit into the error the host sees.
fn classify(exit: Exit, policy: &SandboxPolicy, stderr: String) -> CallError {
    let with_stderr = |what: String| {
        if stderr.is_empty() {
            what
        } else {
            format!("{what}; its last output: {stderr}")
        }
    };
    let Some(status) = exit.status else {
        return CallError::Crashed(with_stderr("the worker vanished".to_owned()));
    };
    if exit.killed {
        return CallError::Crashed(with_stderr(
            "the worker closed its connection but did not exit, and was killed".to_owned(),
        ));
    }
    if libc::WIFEXITED(status) {
        return CallError::Crashed(with_stderr(format!(
            "the worker exited with status {}",
            libc::WEXITSTATUS(status)
        )));
    }
    let signal = libc::WTERMSIG(status);
    // The allocator of a Rust module reports a failed allocation before it
    // aborts; a C module's usually crashes right after `malloc` fails. Either
    // way a worker that dies near its address-space limit ran out of memory.
    let near_memory_limit = policy
        .address_space
        .is_some_and(|limit| exit.max_rss.saturating_mul(2) >= limit);
    let rust_oom = stderr.contains("memory allocation of") && stderr.contains("failed");
    match signal {
        libc::SIGSYS => CallError::Denied(
            "the module made a system call outside the sandbox's allow-list (a socket, exec, a new process, writing a file, ptrace, or signalling another process)".to_owned(),
        ),
        libc::SIGXFSZ => CallError::Denied("the module tried to write a file".to_owned()),
        libc::SIGXCPU => CallError::LimitExceeded(Limit::CpuTime),
        libc::SIGKILL if policy.cpu_time.is_some() && !near_memory_limit => {
            // Only the CPU hard limit kills without our asking (the host
            // kills only on timeouts, reported before this).
            CallError::LimitExceeded(Limit::CpuTime)
        }
        libc::SIGABRT | libc::SIGSEGV | libc::SIGBUS | libc::SIGKILL if rust_oom || near_memory_limit => {
            CallError::LimitExceeded(Limit::Memory)
        }
        other => CallError::Crashed(with_stderr(format!("the worker was killed by {}", signal_name(other)))),
    }
}

fn signal_name(signal: i32) -> String {
    let name = match signal {
        libc::SIGSEGV => "SIGSEGV (invalid memory access)",
        libc::SIGABRT => "SIGABRT (abort)",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL (illegal instruction)",
        libc::SIGFPE => "SIGFPE (arithmetic fault)",
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        other => return format!("signal {other}"),
    };
    name.to_owned()
}

/// A request to the spawner thread: a command, and where to send the pid.
type SpawnRequest = (Command, std::sync::mpsc::Sender<std::io::Result<Pid>>);

/// Start `command` from a thread that lives as long as the process.
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked the worker exits,
/// not the process: a worker spawned from a short-lived thread (a pool
/// thread, a test thread) would be killed with it. Forking from one
/// process-lifetime thread makes the signal mean "the host died".
fn spawn_from_spawner(command: Command) -> std::io::Result<Pid> {
    static SPAWNER: Mutex<Option<std::sync::mpsc::Sender<SpawnRequest>>> = Mutex::new(None);
    let sender = {
        let mut spawner = SPAWNER.lock().unwrap_or_else(PoisonError::into_inner);
        match spawner.as_ref() {
            Some(sender) => sender.clone(),
            None => {
                let (sender, requests) = std::sync::mpsc::channel::<SpawnRequest>();
                std::thread::Builder::new()
                    .name("modhash-spawner".into())
                    .spawn(move || serve_spawns(requests))?;
                spawner.insert(sender).clone()
            }
        }
    };
    let (reply_to, reply) = std::sync::mpsc::channel();
    sender
        .send((command, reply_to))
        .map_err(|_| spawner_gone())?;
    reply.recv().map_err(|_| spawner_gone())?
}

/// The spawner thread's loop; it ends only with the process.
fn serve_spawns(requests: std::sync::mpsc::Receiver<SpawnRequest>) {
    for (mut command, reply_to) in requests {
        // The worker is reaped with wait4 (for its resource usage), not
        // through `Child`; dropping `Child` neither waits nor kills.
        let pid = command.spawn().and_then(|child| {
            Pid::from_raw(i32::try_from(child.id()).unwrap_or(0)).ok_or_else(spawner_gone)
        });
        // Closes this process's copies of the worker's socket and pipe ends.
        drop(command);
        let _ = reply_to.send(pid);
    }
}

fn spawner_gone() -> std::io::Error {
    std::io::Error::other("the worker spawner thread is gone")
}

/// The worker next to the host executable.
fn default_worker_path() -> std::io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().unwrap_or(Path::new("/"));
    Ok(dir.join(WORKER_NAME))
}
