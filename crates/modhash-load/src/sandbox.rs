//! Locking a worker process down before any code of its module runs.
//!
//! `lock_down` is called by `modhash-worker` after it has received the
//! sealed module fd and before it `dlopen`s it, so the module's constructors
//! already run inside the sandbox. In order:
//!
//! 1. `PR_SET_NO_NEW_PRIVS`: no set-uid gain through `execve`, and the
//!    precondition for an unprivileged seccomp filter.
//! 2. Every fd is closed except the ones the worker needs (the socket, the
//!    module, stderr): nothing the host leaked can be reached.
//! 3. rlimits: address space, CPU time, no core files, no file growth, few
//!    open files, and (unless threads are allowed) no new tasks.
//! 4. landlock: no filesystem writes at all; reads only beneath the
//!    policy's library directories (where the module's dependencies live);
//!    no TCP bind/connect; no signals or abstract unix sockets outside the
//!    worker. A kernel without (full) landlock degrades with a warning.
//! 5. seccomp: an allow-list of the system calls a loaded module needs,
//!    with their arguments where an argument decides what the call does
//!    (`fcntl` by command, `openat` by flags, `kill` by target). Anything
//!    else — sockets, `execve`, process-creating `clone`/`fork`, `ptrace`,
//!    `ioctl`, opening a file for writing, signalling another process,
//!    asking the kernel to signal one (`F_SETOWN`, `O_ASYNC`) — kills the
//!    worker with `SIGSYS`, which the host reports as "denied". Running
//!    without seccomp is refused unless the host opted out.
//!
//! Only the worker calls `lock_down`; hosts choose a [`SandboxPolicy`]
//! and read the [`SandboxReport`] it produced.

use std::collections::BTreeMap;
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::time::Duration;

use landlock::{
    Access, AccessFs, AccessNet, PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreatedAttr,
    RulesetStatus, Scope, ABI,
};
use rustix::process::{Resource, Rlimit};
use seccompiler::{
    SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
};

/// The landlock ABI whose rights the sandbox asks for (Linux 6.15). Older
/// kernels get what they support, and a warning.
const LANDLOCK_ABI: ABI = ABI::V7;

/// The landlock ABI to ask for: [`LANDLOCK_ABI`], or older if the policy
/// caps it.
fn landlock_abi(policy: &SandboxPolicy) -> ABI {
    match policy.landlock_abi {
        None => LANDLOCK_ABI,
        Some(0 | 1) => ABI::V1,
        Some(2) => ABI::V2,
        Some(3) => ABI::V3,
        Some(4) => ABI::V4,
        Some(5) => ABI::V5,
        Some(6) => ABI::V6,
        Some(_) => LANDLOCK_ABI,
    }
}

/// Default address-space limit for a worker: ample for a module and its
/// dependencies, small enough that a runaway allocation ends quickly.
pub const DEFAULT_ADDRESS_SPACE: u64 = 1 << 30;

/// Default CPU-time limit over a worker's whole life. Per-call timeouts
/// catch a loop long before this; the rlimit is the backstop when the host
/// gives a call no timeout.
pub const DEFAULT_CPU_TIME: Duration = Duration::from_secs(600);

/// Open-file limit inside the worker: the worker needs three fds, a module
/// a few more while the dynamic loader resolves its dependencies.
const MAX_OPEN_FILES: u64 = 64;

/// What the worker may do. Sent to the worker in the `Hello` frame.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SandboxPolicy {
    /// `RLIMIT_AS` in bytes; `None` for no limit.
    pub address_space: Option<u64>,
    /// `RLIMIT_CPU` over the worker's life (whole seconds, rounded up);
    /// `None` for no limit.
    pub cpu_time: Option<Duration>,
    /// Directories (or files) the module may read: where its dependencies
    /// live. Everything else is unreadable, and nothing is writable.
    pub read_paths: Vec<PathBuf>,
    /// Let the module start threads (never processes). Off by default: a
    /// module that needs no threads should not get `clone`.
    pub allow_threads: bool,
    /// Run even if the kernel cannot install the seccomp filter. Off by
    /// default: without seccomp the module can open sockets and `execve`.
    pub allow_without_seccomp: bool,
    /// Refuse to run unless landlock is fully enforced, instead of warning.
    pub require_landlock: bool,
    /// Ask landlock for the rights of at most this ABI version (1 to 7);
    /// `None` asks for everything this build knows. Shows what a host gets
    /// on an older kernel (ABI 5 and older have no signal scoping, as on
    /// Debian 12's Linux 6.1) without one; the report is then `Partial`.
    pub landlock_abi: Option<u8>,
}

impl Default for SandboxPolicy {
    fn default() -> Self {
        Self {
            address_space: Some(DEFAULT_ADDRESS_SPACE),
            cpu_time: Some(DEFAULT_CPU_TIME),
            read_paths: default_library_paths(),
            allow_threads: false,
            allow_without_seccomp: false,
            require_landlock: false,
            landlock_abi: None,
        }
    }
}

/// Where the dynamic loader finds shared libraries on common distributions,
/// and its cache. Paths that do not exist are skipped at lockdown.
pub fn default_library_paths() -> Vec<PathBuf> {
    [
        "/lib",
        "/lib64",
        "/usr/lib",
        "/usr/lib64",
        "/usr/local/lib",
        "/etc/ld.so.cache",
    ]
    .into_iter()
    .map(PathBuf::from)
    .collect()
}

/// How far landlock confines the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Landlock {
    /// Every requested restriction is enforced.
    Full,
    /// The kernel's landlock is older than the sandbox asks for: some
    /// restrictions (for example network or signal scoping) are missing.
    Partial,
    /// The kernel has no landlock: only seccomp and rlimits confine the
    /// worker, and the module can read any file the host user can.
    Unavailable,
}

/// What the worker's lockdown achieved; the host receives it in the `Ready`
/// frame.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SandboxReport {
    /// Landlock confinement.
    pub landlock: Landlock,
    /// Whether the seccomp allow-list is installed.
    pub seccomp: bool,
    /// What is weaker than asked, in words for the host's user.
    pub warnings: Vec<String>,
}

/// Why the worker could not lock itself down. The worker reports it to the
/// host and exits without loading the module.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LockdownError {
    /// `prctl(PR_SET_NO_NEW_PRIVS)` failed.
    #[error("cannot set no_new_privs: {0}")]
    NoNewPrivs(#[source] rustix::io::Errno),
    /// Closing inherited fds failed (`close_range` needs Linux 5.9).
    #[error("cannot close inherited file descriptors: {0} (close_range needs Linux 5.9 or later)")]
    CloseFds(#[source] std::io::Error),
    /// An rlimit could not be set.
    #[error("cannot set the {resource} limit: {errno}")]
    Rlimit {
        /// Which limit.
        resource: &'static str,
        /// Why.
        #[source]
        errno: rustix::io::Errno,
    },
    /// Building or applying the landlock ruleset failed.
    #[error("cannot apply the landlock ruleset: {0}")]
    Landlock(#[from] landlock::RulesetError),
    /// The policy requires landlock and the kernel cannot fully enforce it.
    #[error("landlock is {0:?} on this kernel and the policy requires it; run on Linux 6.15 or later, or drop require_landlock")]
    LandlockRequired(Landlock),
    /// Building the seccomp filter failed (a bug, or an unsupported
    /// architecture).
    #[error("cannot build the seccomp filter: {0}")]
    SeccompBuild(String),
    /// The kernel refused the seccomp filter and the policy does not allow
    /// running without it.
    #[error("cannot install the seccomp filter ({0}); refusing to run an untrusted module without it (the host may opt out with allow_without_seccomp)")]
    SeccompUnavailable(String),
}

/// Lock the calling process down according to `policy`, keeping only the
/// fds in `keep` open.
///
/// Must be called while the process is single-threaded: the seccomp filter
/// and landlock domain apply to the calling thread and the threads it
/// creates afterwards.
pub(crate) fn lock_down(
    policy: &SandboxPolicy,
    keep: &[RawFd],
) -> Result<SandboxReport, LockdownError> {
    rustix::thread::set_no_new_privs(true).map_err(LockdownError::NoNewPrivs)?;
    close_other_fds(keep)?;
    set_rlimits(policy)?;
    let mut warnings = Vec::new();
    let landlock = apply_landlock(policy, &mut warnings)?;
    if policy.require_landlock && landlock != Landlock::Full {
        return Err(LockdownError::LandlockRequired(landlock));
    }
    let filters = [clone3_filter()?, seccomp_filter(policy)?];
    let applied = filters
        .iter()
        .try_for_each(|filter| seccompiler::apply_filter(filter));
    let seccomp = match applied {
        Ok(()) => true,
        Err(error) if policy.allow_without_seccomp => {
            warnings.push(format!(
                "seccomp filter not installed ({error}): the module may open sockets and execute programs; the host allowed this"
            ));
            false
        }
        Err(error) => return Err(LockdownError::SeccompUnavailable(error.to_string())),
    };
    Ok(SandboxReport {
        landlock,
        seccomp,
        warnings,
    })
}

/// Close every fd not in `keep`.
fn close_other_fds(keep: &[RawFd]) -> Result<(), LockdownError> {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter_map(|fd| u32::try_from(*fd).ok())
        .collect();
    keep.sort_unstable();
    keep.dedup();
    let mut first = 0u32;
    for fd in keep.iter().copied().chain([u32::MAX]) {
        if fd > first {
            close_range(first, fd - 1)?;
        }
        first = fd.saturating_add(1);
        if fd == u32::MAX {
            break;
        }
    }
    Ok(())
}

fn close_range(first: u32, last: u32) -> Result<(), LockdownError> {
    // SAFETY: closes fds the worker does not use. Only the kept fds are
    // owned by live Rust objects in the worker at this point (it calls
    // `lock_down` right after receiving the module, before creating any
    // other file object), so no `OwnedFd` is left dangling.
    let result = unsafe { libc::close_range(first, last, 0) };
    if result == 0 {
        Ok(())
    } else {
        Err(LockdownError::CloseFds(std::io::Error::last_os_error()))
    }
}

fn set_rlimits(policy: &SandboxPolicy) -> Result<(), LockdownError> {
    let set = |resource, name, soft: Option<u64>, hard: Option<u64>| {
        rustix::process::setrlimit(
            resource,
            Rlimit {
                current: soft,
                maximum: hard,
            },
        )
        .map_err(|errno| LockdownError::Rlimit {
            resource: name,
            errno,
        })
    };
    set(Resource::Core, "core file size", Some(0), Some(0))?;
    // Writes to a regular file would raise SIGXFSZ; seccomp and landlock
    // already stop the opens, this stops a module handed a writable fd.
    set(Resource::Fsize, "file size", Some(0), Some(0))?;
    set(
        Resource::Nofile,
        "open files",
        Some(MAX_OPEN_FILES),
        Some(MAX_OPEN_FILES),
    )?;
    if !policy.allow_threads {
        // Counts all tasks of the user, so 0 means "none new". Root ignores
        // it; the seccomp filter covers that case.
        set(Resource::Nproc, "process count", Some(0), Some(0))?;
    }
    if let Some(bytes) = policy.address_space {
        set(Resource::As, "address space", Some(bytes), Some(bytes))?;
    }
    if let Some(cpu) = policy.cpu_time {
        let secs = cpu.as_secs().max(1);
        // SIGXCPU at the soft limit, SIGKILL a second later.
        set(
            Resource::Cpu,
            "CPU time",
            Some(secs),
            Some(secs.saturating_add(1)),
        )?;
    }
    Ok(())
}

fn apply_landlock(
    policy: &SandboxPolicy,
    warnings: &mut Vec<String>,
) -> Result<Landlock, LockdownError> {
    let abi = landlock_abi(policy);
    // landlock refuses an empty set of rights: an ABI without network
    // rights (before 4) or scopes (before 6) must not ask for them at all.
    let mut ruleset = Ruleset::default().handle_access(AccessFs::from_all(abi))?;
    if !AccessNet::from_all(abi).is_empty() {
        ruleset = ruleset.handle_access(AccessNet::from_all(abi))?;
    }
    if !Scope::from_all(abi).is_empty() {
        ruleset = ruleset.scope(Scope::from_all(abi))?;
    }
    let mut ruleset = ruleset.create()?;
    for path in &policy.read_paths {
        let is_dir = match std::fs::metadata(path) {
            Ok(meta) => meta.is_dir(),
            // A default library directory this distribution lacks.
            Err(_) => continue,
        };
        let access = if is_dir {
            AccessFs::from_read(abi)
        } else {
            AccessFs::from_read(abi) & AccessFs::from_file(abi)
        };
        let Ok(fd) = PathFd::new(path) else { continue };
        ruleset = ruleset.add_rule(PathBeneath::new(fd, access))?;
    }
    let status = ruleset.restrict_self()?;
    Ok(match status.ruleset {
        RulesetStatus::FullyEnforced if abi != LANDLOCK_ABI => {
            warnings.push(format!(
                "landlock is limited to ABI {} by the sandbox policy: restrictions of later versions (signal scoping needs 6) are off",
                policy.landlock_abi.unwrap_or_default().max(1)
            ));
            Landlock::Partial
        }
        RulesetStatus::FullyEnforced => Landlock::Full,
        RulesetStatus::PartiallyEnforced => {
            warnings.push(
                "landlock is only partly enforced (kernel older than Linux 6.15): some filesystem, network or signal restrictions are missing".to_owned(),
            );
            Landlock::Partial
        }
        RulesetStatus::NotEnforced => {
            warnings.push(
                "landlock is not available on this kernel: the module can read every file the host user can (it still cannot write any: seccomp refuses opens for writing)".to_owned(),
            );
            Landlock::Unavailable
        }
    })
}

/// `open` flags that ask for write access or create or change a file.
const WRITE_OPEN_FLAGS: u64 =
    (libc::O_WRONLY | libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC | libc::O_APPEND) as u64;

/// The system calls a loaded module may make: what glibc, the dynamic
/// loader and Rust's std use to run code, map libraries, allocate, read the
/// files landlock allows, and exchange frames with the host.
const ALLOWED: &[libc::c_long] = &[
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_readv,
    libc::SYS_writev,
    libc::SYS_pread64,
    libc::SYS_lseek,
    libc::SYS_close,
    libc::SYS_fstat,
    libc::SYS_newfstatat,
    libc::SYS_statx,
    libc::SYS_sendmsg,
    libc::SYS_recvmsg,
    libc::SYS_poll,
    libc::SYS_ppoll,
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mprotect,
    libc::SYS_mremap,
    libc::SYS_madvise,
    libc::SYS_brk,
    libc::SYS_futex,
    libc::SYS_exit,
    libc::SYS_exit_group,
    libc::SYS_rt_sigreturn,
    libc::SYS_rt_sigprocmask,
    libc::SYS_rt_sigaction,
    libc::SYS_sigaltstack,
    libc::SYS_getpid,
    libc::SYS_gettid,
    libc::SYS_getuid,
    libc::SYS_geteuid,
    libc::SYS_getgid,
    libc::SYS_getegid,
    libc::SYS_clock_gettime,
    libc::SYS_clock_getres,
    libc::SYS_gettimeofday,
    libc::SYS_clock_nanosleep,
    libc::SYS_nanosleep,
    libc::SYS_sched_yield,
    libc::SYS_sched_getaffinity,
    libc::SYS_getrandom,
    libc::SYS_rseq,
    libc::SYS_set_robust_list,
    libc::SYS_restart_syscall,
    libc::SYS_uname,
];

/// Build the allow-list filter. The pid is baked in so `kill`/`tgkill` can
/// reach only the worker itself (`abort` signals its own process).
fn seccomp_filter(policy: &SandboxPolicy) -> Result<seccompiler::BpfProgram, LockdownError> {
    let build = |e: seccompiler::BackendError| LockdownError::SeccompBuild(e.to_string());
    let cond = |arg, op, value| {
        SeccompCondition::new(arg, SeccompCmpArgLen::Qword, op, value).map_err(build)
    };
    let self_pid = u64::try_from(rustix::process::getpid().as_raw_nonzero().get()).unwrap_or(0);

    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        ALLOWED.iter().map(|nr| (*nr, Vec::new())).collect();
    // Allowed here, answered ENOSYS by `clone3_filter`: the stricter action
    // of the two filters wins.
    rules.insert(libc::SYS_clone3, Vec::new());
    // Opening for reading only; landlock limits where.
    rules.insert(
        libc::SYS_openat,
        vec![
            SeccompRule::new(vec![cond(2, SeccompCmpOp::MaskedEq(WRITE_OPEN_FLAGS), 0)?])
                .map_err(build)?,
        ],
    );
    rules.insert(libc::SYS_fcntl, fcntl_rules()?);
    for nr in [libc::SYS_kill, libc::SYS_tgkill] {
        rules.insert(
            nr,
            vec![SeccompRule::new(vec![cond(0, SeccompCmpOp::Eq, self_pid)?]).map_err(build)?],
        );
    }
    if policy.allow_threads {
        // Threads only: `clone` with CLONE_THREAD set (`clone3` gets
        // ENOSYS from the companion filter, so glibc falls back to `clone`).
        let thread = libc::CLONE_THREAD as u64;
        rules.insert(
            libc::SYS_clone,
            vec![
                SeccompRule::new(vec![cond(0, SeccompCmpOp::MaskedEq(thread), thread)?])
                    .map_err(build)?,
            ],
        );
        rules.insert(
            libc::SYS_prctl,
            vec![
                SeccompRule::new(vec![cond(0, SeccompCmpOp::Eq, libc::PR_SET_NAME as u64)?])
                    .map_err(build)?,
                SeccompRule::new(vec![cond(0, SeccompCmpOp::Eq, libc::PR_GET_NAME as u64)?])
                    .map_err(build)?,
            ],
        );
        rules.insert(libc::SYS_set_tid_address, Vec::new());
        rules.insert(libc::SYS_membarrier, Vec::new());
    }
    compile(rules, SeccompAction::KillProcess, SeccompAction::Allow)
}

/// `fcntl` commands the worker, glibc and Rust's std use: duplicating fds,
/// their close-on-exec and status flags, reading seals. Not among them:
/// `F_SETOWN`, `F_SETOWN_EX`, `F_SETSIG`, `F_SETLEASE`, `F_NOTIFY` (each
/// makes the kernel send signals to a process the module chooses, such as
/// the host), locks, and pipe resizing.
const FCNTL_ALLOWED: &[libc::c_int] = &[
    libc::F_DUPFD,
    libc::F_DUPFD_CLOEXEC,
    libc::F_GETFD,
    libc::F_SETFD,
    libc::F_GETFL,
    libc::F_GET_SEALS,
];

/// One rule per allowed command, and `F_SETFL` only without `O_ASYNC`: with
/// it, I/O on the fd signals the fd's owner.
fn fcntl_rules() -> Result<Vec<SeccompRule>, LockdownError> {
    let build = |e: seccompiler::BackendError| LockdownError::SeccompBuild(e.to_string());
    // The command is an `int`: compare 32 bits, as the kernel reads them.
    let cmd = |command: libc::c_int| {
        SeccompCondition::new(
            1,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::Eq,
            u64::from(command.unsigned_abs()),
        )
        .map_err(build)
    };
    let mut rules = FCNTL_ALLOWED
        .iter()
        .map(|command| SeccompRule::new(vec![cmd(*command)?]).map_err(build))
        .collect::<Result<Vec<_>, _>>()?;
    let no_async = SeccompCondition::new(
        2,
        SeccompCmpArgLen::Dword,
        SeccompCmpOp::MaskedEq(u64::from(libc::O_ASYNC.unsigned_abs())),
        0,
    )
    .map_err(build)?;
    rules.push(SeccompRule::new(vec![cmd(libc::F_SETFL)?, no_async]).map_err(build)?);
    Ok(rules)
}

/// `clone3` passes its flags in memory a seccomp filter cannot read, so it
/// cannot be told apart from a fork. Answer it `ENOSYS`, which makes glibc
/// fall back to `clone`, whose flags the allow-list checks.
fn clone3_filter() -> Result<seccompiler::BpfProgram, LockdownError> {
    let rules = BTreeMap::from([(libc::SYS_clone3, Vec::new())]);
    compile(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS.unsigned_abs()),
    )
}

fn compile(
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    mismatch: SeccompAction,
    matched: SeccompAction,
) -> Result<seccompiler::BpfProgram, LockdownError> {
    let build = |e: seccompiler::BackendError| LockdownError::SeccompBuild(e.to_string());
    let arch = std::env::consts::ARCH.try_into().map_err(build)?;
    SeccompFilter::new(rules, mismatch, matched, arch)
        .map_err(build)?
        .try_into()
        .map_err(build)
}
