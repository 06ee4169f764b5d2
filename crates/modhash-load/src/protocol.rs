//! The framed protocol between a host and its isolated worker.
//!
//! Host and worker talk over one `SOCK_STREAM` unix socket pair. Every
//! message is a frame: a fixed 16-byte header followed by a body whose length
//! the header gives. A stream socket (not `SOCK_SEQPACKET`) keeps large
//! payloads independent of the socket buffer size; the fixed header keeps the
//! framing to one `writev` and usually one `read` per message, which is what
//! keeps a round trip in the low microseconds.
//!
//! The worker is untrusted once module code runs, so everything it sends is
//! parsed defensively: unknown kinds, oversized bodies, wrong request ids and
//! truncated bodies are [`Violation`]s, after which the host kills the
//! worker instead of trying to resynchronise. `docs/isolation.md` documents
//! the wire format; this file is its implementation.

use std::io::IoSlice;
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use modhash_plugin::host::{Failure, FailureKind};
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::io::Errno;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::sandbox::{Landlock, SandboxPolicy, SandboxReport};

/// Version of the wire format, sent in the `Hello` body; a worker refuses a
/// host that speaks another version (the two ship together, but a host could
/// be pointed at a stale worker binary).
pub(crate) const PROTOCOL_VERSION: u16 = 2;

/// Size of the fixed frame header.
pub(crate) const HEADER_LEN: usize = 16;

/// Largest body either side accepts (64 MiB): a hostile worker must not make
/// the host allocate without bound.
pub(crate) const MAX_BODY_LEN: u32 = 64 << 20;

/// The two magic bytes that start every header; they catch a peer that is
/// not speaking this protocol at all (or a desynchronised stream) at once.
const MAGIC: [u8; 2] = *b"MH";

/// Size of the read buffer: one read takes a small frame whole.
const READ_BUFFER_LEN: usize = 16 << 10;

/// What a frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum Kind {
    /// Host → worker, first frame: protocol version and sandbox policy; the
    /// sealed module fd rides along as `SCM_RIGHTS` ancillary data.
    Hello = 1,
    /// Worker → host: locked down and module loaded; body is the sandbox
    /// report.
    Ready = 2,
    /// Host → worker: call a method; body is `u32 method, payload`.
    Call = 3,
    /// Worker → host: the answer to the call with the same id; the header's
    /// status says how to read the body.
    Reply = 4,
    /// Host → worker: destroy the module instance and exit 0.
    Shutdown = 5,
    /// Worker → host: the worker could not start (lockdown or load failed);
    /// body is `u8 stage, UTF-8 message`. The worker exits after sending it.
    Fatal = 6,
}

impl TryFrom<u8> for Kind {
    type Error = Violation;

    fn try_from(value: u8) -> Result<Self, Self::Error> {
        Ok(match value {
            1 => Self::Hello,
            2 => Self::Ready,
            3 => Self::Call,
            4 => Self::Reply,
            5 => Self::Shutdown,
            6 => Self::Fatal,
            other => return Err(Violation::UnknownKind(other)),
        })
    }
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    /// What the frame is.
    pub(crate) kind: Kind,
    /// Reply status (see [`ReplyStatus`]); 0 for other kinds.
    pub(crate) status: u8,
    /// Request id: a `Reply` carries the id of its `Call`; 0 otherwise.
    pub(crate) id: u64,
    /// The body.
    pub(crate) body: Vec<u8>,
}

/// How the body of a `Reply` is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum ReplyStatus {
    /// The body is the method's output.
    Ok = 0,
    /// The module returned an error; the body is its UTF-8 message.
    ModuleError = 1,
    /// The module panicked (caught at the ABI boundary); the body is the
    /// panic message.
    Panicked = 2,
    /// The module returned a status the ABI does not define; the body is
    /// that status (`i32`) followed by the module's message.
    UnknownStatus = 3,
}

impl TryFrom<u8> for ReplyStatus {
    type Error = Violation;

    fn try_from(value: u8) -> Result<Self, Self::Error> {
        Ok(match value {
            0 => Self::Ok,
            1 => Self::ModuleError,
            2 => Self::Panicked,
            3 => Self::UnknownStatus,
            other => return Err(Violation::UnknownStatus(other)),
        })
    }
}

/// How an isolated worker broke the protocol. Opaque: its message names
/// what was wrong, which is all a host can act on (the worker is killed
/// either way), and the frame layout behind it stays free to change.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(transparent)]
pub struct ProtocolError(#[from] Violation);

/// What exactly the peer got wrong.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum Violation {
    /// The header does not start with the magic bytes.
    #[error(
        "frame header has bad magic bytes: the peer does not speak the modhash worker protocol"
    )]
    BadMagic,
    /// The header names a kind this version does not know.
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    /// A reply status this version does not know.
    #[error("unknown reply status {0}")]
    UnknownStatus(u8),
    /// The body is larger than [`MAX_BODY_LEN`].
    #[error("frame body of {0} bytes exceeds the limit of {MAX_BODY_LEN} bytes")]
    TooLarge(u32),
    /// A body ended before the fields it must hold.
    #[error("{0} body is truncated")]
    Truncated(&'static str),
    /// A frame arrived that the conversation does not allow here.
    #[error("expected a {expected:?} frame, got {got:?}")]
    Unexpected {
        /// What the protocol allows at this point.
        expected: Kind,
        /// What arrived.
        got: Kind,
    },
    /// A reply carries another request's id.
    #[error("reply for request {got}, expected {expected}")]
    WrongId {
        /// The id of the outstanding call.
        expected: u64,
        /// The id in the reply.
        got: u64,
    },
    /// Peer speaks another protocol version.
    #[error("peer speaks protocol version {0}, this build speaks {PROTOCOL_VERSION}: install the worker built with this host")]
    Version(u16),
}

/// Receiving or sending a frame failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum IoError {
    /// The peer closed its end (for the host: the worker died).
    #[error("the peer closed the connection")]
    Closed,
    /// The deadline passed before the frame was complete.
    #[error("timed out")]
    TimedOut,
    /// The peer sent something that is not a valid frame.
    #[error(transparent)]
    Protocol(#[from] Violation),
    /// The socket failed.
    #[error("socket error: {0}")]
    Os(#[from] Errno),
}

/// A parsed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    kind: Kind,
    status: u8,
    len: u32,
    id: u64,
}

impl Header {
    fn encode(self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        let (magic, rest) = out.split_at_mut(2);
        magic.copy_from_slice(&MAGIC);
        let (kind_status, rest) = rest.split_at_mut(2);
        kind_status.copy_from_slice(&[self.kind as u8, self.status]);
        let (len, id) = rest.split_at_mut(4);
        len.copy_from_slice(&self.len.to_le_bytes());
        id.copy_from_slice(&self.id.to_le_bytes());
        out
    }

    fn decode(raw: &[u8; HEADER_LEN]) -> Result<Self, Violation> {
        let [m0, m1, kind, status, l0, l1, l2, l3, i0, i1, i2, i3, i4, i5, i6, i7] = *raw;
        if [m0, m1] != MAGIC {
            return Err(Violation::BadMagic);
        }
        let len = u32::from_le_bytes([l0, l1, l2, l3]);
        if len > MAX_BODY_LEN {
            return Err(Violation::TooLarge(len));
        }
        Ok(Self {
            kind: Kind::try_from(kind)?,
            status,
            len,
            id: u64::from_le_bytes([i0, i1, i2, i3, i4, i5, i6, i7]),
        })
    }
}

/// Build the header for a frame whose body is `body_parts` concatenated.
fn header_for(
    kind: Kind,
    status: u8,
    id: u64,
    body_parts: &[&[u8]],
) -> Result<[u8; HEADER_LEN], Violation> {
    let total: usize = body_parts.iter().map(|part| part.len()).sum();
    let len = u32::try_from(total)
        .ok()
        .filter(|len| *len <= MAX_BODY_LEN)
        .ok_or(Violation::TooLarge(
            u32::try_from(total).unwrap_or(u32::MAX),
        ))?;
    Ok(Header {
        kind,
        status,
        len,
        id,
    }
    .encode())
}

/// Wait until `fd` is ready for `events` or `deadline` passes.
///
/// Only reached after an `EAGAIN` on a non-blocking socket, so the fast path
/// (data already there) costs no extra system call.
fn wait(fd: BorrowedFd<'_>, events: PollFlags, deadline: Option<Instant>) -> Result<(), IoError> {
    loop {
        let timeout = match deadline {
            None => None,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(IoError::TimedOut);
                }
                Some(duration_to_timespec(left))
            }
        };
        let mut fds = [PollFd::new(&fd, events)];
        match poll(&mut fds, timeout.as_ref()) {
            Ok(0) => {}
            // Readable, writable, or hung up / error: the next read or write
            // tells which.
            Ok(_) => return Ok(()),
            Err(Errno::INTR) => {}
            Err(err) => return Err(IoError::Os(err)),
        }
    }
}

fn duration_to_timespec(duration: Duration) -> Timespec {
    Timespec {
        tv_sec: i64::try_from(duration.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(duration.subsec_nanos()),
    }
}

/// Send one frame, with `body_parts` written back to back as its body.
///
/// Header and body go out in one `writev` (no copy of the payload); partial
/// writes are continued. On a non-blocking socket a full buffer waits until
/// `deadline`.
pub(crate) fn send_frame(
    fd: BorrowedFd<'_>,
    kind: Kind,
    status: u8,
    id: u64,
    body_parts: &[&[u8]],
    deadline: Option<Instant>,
) -> Result<(), IoError> {
    let header = header_for(kind, status, id, body_parts)?;
    let mut parts: Vec<&[u8]> = Vec::with_capacity(body_parts.len() + 1);
    parts.push(&header);
    parts.extend(body_parts.iter().copied().filter(|part| !part.is_empty()));
    let mut skip = 0usize;
    while !parts.is_empty() {
        let slices: Vec<IoSlice<'_>> = parts.iter().map(|part| IoSlice::new(part)).collect();
        let written = match rustix::net::sendmsg(
            fd,
            &slices,
            &mut rustix::net::SendAncillaryBuffer::default(),
            rustix::net::SendFlags::NOSIGNAL,
        ) {
            Ok(n) => n,
            Err(Errno::AGAIN) => {
                wait(fd, PollFlags::OUT, deadline)?;
                continue;
            }
            Err(Errno::INTR) => continue,
            Err(Errno::PIPE | Errno::CONNRESET) => return Err(IoError::Closed),
            Err(err) => return Err(IoError::Os(err)),
        };
        skip += written;
        // Drop the fully written parts, trim the first partly written one.
        while let Some(first) = parts.first() {
            if skip >= first.len() {
                skip -= first.len();
                parts.remove(0);
            } else {
                let rest = first.get(skip..).unwrap_or_default();
                if let Some(slot) = parts.first_mut() {
                    *slot = rest;
                }
                skip = 0;
                break;
            }
        }
    }
    Ok(())
}

/// The longest a reader busy-waits for a frame, whatever it is asked.
pub(crate) const MAX_SPIN: Duration = Duration::from_millis(1);

/// How long a reader busy-waits on its non-blocking socket before it
/// sleeps in `poll`.
///
/// Waking a sleeping thread on an idle CPU costs tens of microseconds per
/// hand-off, more than a short call itself; a peer that answers within the
/// spin is read without sleeping. The spin adapts so that it costs CPU only
/// while it pays: after a frame that arrived within `max`, the next wait
/// spins the full `max`; after one that took longer, half as long as the
/// last, so a peer that is quiet for long stretches costs next to nothing.
#[derive(Debug, Clone, Copy, Default)]
struct Spin {
    max: Duration,
    now: Duration,
}

impl Spin {
    fn adapt(&mut self, waited: Duration) {
        self.now = if waited <= self.max {
            self.max
        } else {
            self.now / 2
        };
    }
}

/// Reads frames from a stream socket, buffering what arrives ahead.
#[derive(Debug)]
pub(crate) struct FrameReader {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    spin: Spin,
}

impl Default for FrameReader {
    fn default() -> Self {
        Self {
            buf: vec![0u8; READ_BUFFER_LEN].into_boxed_slice(),
            start: 0,
            end: 0,
            spin: Spin::default(),
        }
    }
}

impl FrameReader {
    /// A reader that busy-waits up to `spin` (at most [`MAX_SPIN`]) for
    /// each frame before it sleeps; the socket must be non-blocking.
    pub(crate) fn with_spin(spin: Duration) -> Self {
        let max = spin.min(MAX_SPIN);
        Self {
            spin: Spin { max, now: max },
            ..Self::default()
        }
    }

    /// Read the next frame from `fd`, waiting at most until `deadline` on a
    /// non-blocking socket (a blocking socket waits as long as it takes).
    pub(crate) fn recv(
        &mut self,
        fd: BorrowedFd<'_>,
        deadline: Option<Instant>,
    ) -> Result<Frame, IoError> {
        let started = (!self.spin.max.is_zero()).then(Instant::now);
        while self.end - self.start < HEADER_LEN {
            self.fill(fd, deadline)?;
        }
        if let Some(started) = started {
            self.spin.adapt(started.elapsed());
        }
        let mut raw = [0u8; HEADER_LEN];
        raw.copy_from_slice(self.buffered().get(..HEADER_LEN).unwrap_or_default());
        let header = Header::decode(&raw)?;
        self.start += HEADER_LEN;

        let len = usize::try_from(header.len).map_err(|_| Violation::TooLarge(header.len))?;
        let buffered = self.buffered();
        let body = if buffered.len() >= len {
            let body = buffered.get(..len).unwrap_or_default().to_vec();
            self.start += len;
            body
        } else {
            // A body larger than what has arrived: move what is buffered and
            // read the rest straight into the body, not through the buffer.
            let mut body = vec![0u8; len];
            let have = buffered.len();
            if let Some(head) = body.get_mut(..have) {
                head.copy_from_slice(buffered);
            }
            self.start = 0;
            self.end = 0;
            let mut filled = have;
            while filled < len {
                filled += read_some(
                    fd,
                    body.get_mut(filled..).unwrap_or_default(),
                    deadline,
                    self.spin.now,
                )?;
            }
            body
        };
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        Ok(Frame {
            kind: header.kind,
            status: header.status,
            id: header.id,
            body,
        })
    }

    fn buffered(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or_default()
    }

    /// Read more bytes into the buffer, compacting it first if the unread
    /// bytes sit at its end.
    fn fill(&mut self, fd: BorrowedFd<'_>, deadline: Option<Instant>) -> Result<(), IoError> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let free = self.buf.get_mut(self.end..).unwrap_or_default();
        self.end += read_some(fd, free, deadline, self.spin.now)?;
        Ok(())
    }
}

/// One successful, non-empty read; on a non-blocking socket, retried for
/// up to `spin` before sleeping in `poll`.
fn read_some(
    fd: BorrowedFd<'_>,
    into: &mut [u8],
    deadline: Option<Instant>,
    spin: Duration,
) -> Result<usize, IoError> {
    let mut spin_until = None;
    loop {
        match rustix::io::read(fd, &mut *into) {
            Ok(0) => return Err(IoError::Closed),
            Ok(n) => return Ok(n),
            Err(Errno::AGAIN) if !spin.is_zero() => {
                let now = Instant::now();
                if now < *spin_until.get_or_insert(now + spin) {
                    // Yield rather than spin in place: on a busy machine the
                    // peer may be waiting for this very CPU; on an idle one
                    // the yield returns at once.
                    rustix::thread::sched_yield();
                } else {
                    wait(fd, PollFlags::IN, deadline)?;
                }
            }
            Err(Errno::AGAIN) => wait(fd, PollFlags::IN, deadline)?,
            Err(Errno::INTR) => {}
            Err(Errno::CONNRESET) => return Err(IoError::Closed),
            Err(err) => return Err(IoError::Os(err)),
        }
    }
}

/// Encode a `Call` body's prefix: the method number. The payload follows as
/// a separate `writev` part, so it is never copied.
pub(crate) fn call_prefix(method: u32) -> [u8; 4] {
    method.to_le_bytes()
}

/// Split a `Call` body into method and payload.
pub(crate) fn parse_call(body: &[u8]) -> Result<(u32, &[u8]), Violation> {
    let mut cursor = Cursor::new(body, "Call");
    let method = cursor.u32()?;
    Ok((method, cursor.rest()))
}

/// The reply status and body prefix for a module's answer. On success the
/// prefix is empty and the output follows as its own `writev` part (never
/// copied); on failure the prefix is the whole body.
pub(crate) fn encode_reply(result: &Result<Vec<u8>, Failure>) -> (u8, Vec<u8>) {
    match result {
        Ok(_) => (ReplyStatus::Ok as u8, Vec::new()),
        Err(failure) => {
            let (status, mut body) = match failure.kind {
                FailureKind::Panic => (ReplyStatus::Panicked, Vec::new()),
                FailureKind::UnknownStatus(code) => {
                    (ReplyStatus::UnknownStatus, code.to_le_bytes().to_vec())
                }
                // `Error`, and any kind a later modhash-plugin adds: the
                // message still reaches the host.
                _ => (ReplyStatus::ModuleError, Vec::new()),
            };
            body.extend_from_slice(failure.message.as_bytes());
            (status as u8, body)
        }
    }
}

/// Read a `Reply` frame back into what the module answered.
pub(crate) fn decode_reply(
    status: u8,
    body: Vec<u8>,
) -> Result<Result<Vec<u8>, Failure>, Violation> {
    let failure = |kind, message: &[u8]| Failure {
        kind,
        message: String::from_utf8_lossy(message).into_owned(),
    };
    Ok(match ReplyStatus::try_from(status)? {
        ReplyStatus::Ok => Ok(body),
        ReplyStatus::ModuleError => Err(failure(FailureKind::Error, &body)),
        ReplyStatus::Panicked => Err(failure(FailureKind::Panic, &body)),
        ReplyStatus::UnknownStatus => {
            let mut cursor = Cursor::new(&body, "Reply");
            let code = i32::from_le_bytes(cursor.array()?);
            Err(failure(FailureKind::UnknownStatus(code), cursor.rest()))
        }
    })
}

/// Encode a `Hello` body: version, sandbox policy, how long the worker
/// spins for a call (µs), then the instance configuration as the rest of
/// the body.
pub(crate) fn encode_hello(
    policy: &SandboxPolicy,
    spin: Duration,
    config: &[u8],
) -> Result<Vec<u8>, Violation> {
    let mut body = PROTOCOL_VERSION.to_le_bytes().to_vec();
    encode_policy(policy, &mut body)?;
    let spin = u32::try_from(spin.min(MAX_SPIN).as_micros()).unwrap_or(u32::MAX);
    body.extend_from_slice(&spin.to_le_bytes());
    body.extend_from_slice(config);
    Ok(body)
}

/// Split a `Hello` body into policy and instance configuration, refusing
/// another protocol version.
pub(crate) fn decode_hello(body: &[u8]) -> Result<Hello<'_>, Violation> {
    let mut cursor = Cursor::new(body, "Hello");
    let version = cursor.u16()?;
    if version != PROTOCOL_VERSION {
        return Err(Violation::Version(version));
    }
    let policy = decode_policy(&mut cursor)?;
    let spin = Duration::from_micros(u64::from(cursor.u32()?));
    Ok(Hello {
        policy,
        spin,
        config: cursor.rest(),
    })
}

/// What a `Hello` body tells the worker.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Hello<'a> {
    pub(crate) policy: SandboxPolicy,
    /// How long to busy-wait for each call (see [`FrameReader::with_spin`]).
    pub(crate) spin: Duration,
    /// The instance configuration.
    pub(crate) config: &'a [u8],
}

const FLAG_THREADS: u8 = 1;
const FLAG_NO_SECCOMP: u8 = 2;
const FLAG_REQUIRE_LANDLOCK: u8 = 4;

/// Append a sandbox policy's wire encoding (see `docs/isolation.md`).
fn encode_policy(policy: &SandboxPolicy, out: &mut Vec<u8>) -> Result<(), Violation> {
    let mut flags = 0u8;
    if policy.allow_threads {
        flags |= FLAG_THREADS;
    }
    if policy.allow_without_seccomp {
        flags |= FLAG_NO_SECCOMP;
    }
    if policy.require_landlock {
        flags |= FLAG_REQUIRE_LANDLOCK;
    }
    out.push(flags);
    out.push(policy.landlock_abi.unwrap_or(0));
    out.extend_from_slice(&policy.address_space.unwrap_or(0).to_le_bytes());
    let cpu = policy
        .cpu_time
        .map_or(0, |cpu| cpu.as_secs() + u64::from(cpu.subsec_nanos() > 0));
    out.extend_from_slice(&cpu.to_le_bytes());
    let count = u16::try_from(policy.read_paths.len())
        .map_err(|_| Violation::Truncated("Hello (too many read paths)"))?;
    out.extend_from_slice(&count.to_le_bytes());
    for path in &policy.read_paths {
        let bytes = path.as_os_str().as_bytes();
        let len = u16::try_from(bytes.len())
            .map_err(|_| Violation::Truncated("Hello (read path too long)"))?;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(bytes);
    }
    Ok(())
}

/// Read a sandbox policy's wire encoding.
fn decode_policy(cursor: &mut Cursor<'_>) -> Result<SandboxPolicy, Violation> {
    let flags = cursor.u8()?;
    let landlock_abi = Some(cursor.u8()?).filter(|abi| *abi != 0);
    let address_space = Some(cursor.u64()?).filter(|limit| *limit != 0);
    let cpu_time = Some(cursor.u64()?)
        .filter(|secs| *secs != 0)
        .map(Duration::from_secs);
    let count = cursor.u16()?;
    let mut read_paths = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let len = usize::from(cursor.u16()?);
        read_paths.push(PathBuf::from(OsStr::from_bytes(cursor.take(len)?)));
    }
    Ok(SandboxPolicy {
        address_space,
        cpu_time,
        read_paths,
        allow_threads: flags & FLAG_THREADS != 0,
        allow_without_seccomp: flags & FLAG_NO_SECCOMP != 0,
        require_landlock: flags & FLAG_REQUIRE_LANDLOCK != 0,
        landlock_abi,
    })
}

/// The `Ready` body: what the worker's lockdown achieved, then the name the
/// module reports.
pub(crate) fn encode_ready(report: &SandboxReport, name: &str) -> Result<Vec<u8>, Violation> {
    let mut out = vec![
        match report.landlock {
            Landlock::Full => 2,
            Landlock::Partial => 1,
            Landlock::Unavailable => 0,
        },
        u8::from(report.seccomp),
    ];
    let count = u16::try_from(report.warnings.len())
        .map_err(|_| Violation::Truncated("Ready (too many warnings)"))?;
    out.extend_from_slice(&count.to_le_bytes());
    for warning in &report.warnings {
        put_str16(&mut out, warning)?;
    }
    put_str16(&mut out, name)?;
    Ok(out)
}

/// Read a `Ready` body back into the sandbox report and the module's name.
pub(crate) fn decode_ready(body: &[u8]) -> Result<(SandboxReport, String), Violation> {
    let mut cursor = Cursor::new(body, "Ready");
    let landlock = match cursor.u8()? {
        2 => Landlock::Full,
        1 => Landlock::Partial,
        _ => Landlock::Unavailable,
    };
    let seccomp = cursor.u8()? != 0;
    let count = cursor.u16()?;
    let mut warnings = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        warnings.push(cursor.str16()?.to_owned());
    }
    let name = cursor.str16()?.to_owned();
    Ok((
        SandboxReport {
            landlock,
            seccomp,
            warnings,
        },
        name,
    ))
}

/// Which startup stage a `Fatal` frame reports (its first body byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FatalStage {
    /// The host's frames were not understood.
    Protocol = 1,
    /// The module memfd is not sealed, or cannot be read.
    Image = 2,
    /// The sandbox could not be set up.
    Lockdown = 3,
    /// The module did not load (dynamic loader, ABI, or its `create`).
    Load = 4,
}

impl FatalStage {
    /// The stage a `Fatal` body names; unknown numbers read as `Protocol`.
    pub(crate) fn from_byte(byte: u8) -> Self {
        match byte {
            2 => Self::Image,
            3 => Self::Lockdown,
            4 => Self::Load,
            _ => Self::Protocol,
        }
    }
}

/// A little-endian reader over a body that reports truncation instead of
/// panicking.
#[derive(Debug)]
pub(crate) struct Cursor<'a> {
    rest: &'a [u8],
    what: &'static str,
}

impl<'a> Cursor<'a> {
    /// Read `body` of a frame named `what` (used in error messages).
    pub(crate) fn new(body: &'a [u8], what: &'static str) -> Self {
        Self { rest: body, what }
    }

    /// Take `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], Violation> {
        if self.rest.len() < n {
            return Err(Violation::Truncated(self.what));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// Take a `u8`.
    pub(crate) fn u8(&mut self) -> Result<u8, Violation> {
        let [byte] = self.array::<1>()?;
        Ok(byte)
    }

    /// Take a little-endian `u16`.
    pub(crate) fn u16(&mut self) -> Result<u16, Violation> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    /// Take a little-endian `u32`.
    pub(crate) fn u32(&mut self) -> Result<u32, Violation> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// Take a little-endian `u64`.
    pub(crate) fn u64(&mut self) -> Result<u64, Violation> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// Take a UTF-8 string preceded by its `u16` length.
    pub(crate) fn str16(&mut self) -> Result<&'a str, Violation> {
        let len = usize::from(self.u16()?);
        std::str::from_utf8(self.take(len)?).map_err(|_| Violation::Truncated(self.what))
    }

    /// Everything not read yet.
    pub(crate) fn rest(self) -> &'a [u8] {
        self.rest
    }

    /// Take `N` bytes as an array.
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], Violation> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
}

/// Append a `u16`-length-prefixed string (as read by [`Cursor::str16`]).
pub(crate) fn put_str16(out: &mut Vec<u8>, value: &str) -> Result<(), Violation> {
    let len = u16::try_from(value.len())
        .map_err(|_| Violation::TooLarge(u32::try_from(value.len()).unwrap_or(u32::MAX)))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(value.as_bytes());
    Ok(())
}

/// Send the `Hello` frame with the sealed module fd attached as
/// `SCM_RIGHTS`. The body is small and always fits the socket buffer of a
/// fresh socket pair, so one `sendmsg` carries it whole.
pub(crate) fn send_hello(
    fd: BorrowedFd<'_>,
    body: &[u8],
    module: BorrowedFd<'_>,
) -> Result<(), IoError> {
    let header = header_for(Kind::Hello, 0, 0, &[body])?;
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut ancillary = rustix::net::SendAncillaryBuffer::new(&mut space);
    let fds = [module];
    if !ancillary.push(rustix::net::SendAncillaryMessage::ScmRights(&fds)) {
        return Err(IoError::Os(Errno::NOBUFS));
    }
    let slices = [IoSlice::new(&header), IoSlice::new(body)];
    let expected = HEADER_LEN + body.len();
    let sent = rustix::net::sendmsg(
        fd,
        &slices,
        &mut ancillary,
        rustix::net::SendFlags::NOSIGNAL,
    )?;
    if sent == expected {
        Ok(())
    } else {
        Err(IoError::Os(Errno::MSGSIZE))
    }
}

/// Receive the `Hello` frame and the module fd attached to it.
///
/// Called by the worker before it locks itself down, on a blocking socket.
pub(crate) fn recv_hello(fd: BorrowedFd<'_>) -> Result<(Vec<u8>, std::os::fd::OwnedFd), IoError> {
    let mut header_raw = [0u8; HEADER_LEN];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut ancillary = rustix::net::RecvAncillaryBuffer::new(&mut space);
    let mut iov = [std::io::IoSliceMut::new(&mut header_raw)];
    let msg = rustix::net::recvmsg(
        fd,
        &mut iov,
        &mut ancillary,
        rustix::net::RecvFlags::CMSG_CLOEXEC | rustix::net::RecvFlags::WAITALL,
    )?;
    if msg.bytes == 0 {
        return Err(IoError::Closed);
    }
    if msg.bytes != HEADER_LEN {
        return Err(Violation::Truncated("Hello").into());
    }
    let mut module = None;
    for message in ancillary.drain() {
        if let rustix::net::RecvAncillaryMessage::ScmRights(fds) = message {
            for received in fds {
                // Keep the first fd; any extra ones are closed on drop.
                if module.is_none() {
                    module = Some(received);
                }
            }
        }
    }
    let header = Header::decode(&header_raw)?;
    if header.kind != Kind::Hello {
        return Err(Violation::Unexpected {
            expected: Kind::Hello,
            got: header.kind,
        }
        .into());
    }
    let module = module.ok_or(Violation::Truncated("Hello (no module fd attached)"))?;
    let len = usize::try_from(header.len).map_err(|_| Violation::TooLarge(header.len))?;
    let mut body = vec![0u8; len];
    let mut filled = 0;
    while filled < len {
        filled += read_some(
            fd,
            body.get_mut(filled..).unwrap_or_default(),
            None,
            Duration::ZERO,
        )?;
    }
    Ok((body, module))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};
    use std::os::fd::AsFd;

    fn pair() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
        socketpair(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::CLOEXEC,
            None,
        )
        .expect("socketpair")
    }

    #[test]
    fn header_round_trips() {
        let header = Header {
            kind: Kind::Reply,
            status: 3,
            len: 77,
            id: 0x0102_0304_0506_0708,
        };
        assert_eq!(Header::decode(&header.encode()), Ok(header));
    }

    #[test]
    fn bad_headers_are_errors() {
        let good = Header {
            kind: Kind::Call,
            status: 0,
            len: 1,
            id: 1,
        }
        .encode();
        let mut bad_magic = good;
        bad_magic[0] = b'X';
        assert_eq!(Header::decode(&bad_magic), Err(Violation::BadMagic));
        let mut bad_kind = good;
        bad_kind[2] = 99;
        assert_eq!(Header::decode(&bad_kind), Err(Violation::UnknownKind(99)));
        let too_large = Header {
            kind: Kind::Call,
            status: 0,
            len: MAX_BODY_LEN + 1,
            id: 1,
        }
        .encode();
        assert_eq!(
            Header::decode(&too_large),
            Err(Violation::TooLarge(MAX_BODY_LEN + 1))
        );
    }

    #[test]
    fn frames_small_and_large_cross_a_socket() {
        let (a, b) = pair();
        let big = vec![0xA5u8; 300 << 10];
        let writer = std::thread::spawn(move || {
            let prefix = call_prefix(42);
            send_frame(a.as_fd(), Kind::Call, 0, 7, &[&prefix, b"hi"], None).expect("send small");
            send_frame(a.as_fd(), Kind::Reply, 0, 8, &[&big], None).expect("send big");
            send_frame(a.as_fd(), Kind::Shutdown, 0, 9, &[], None).expect("send empty");
        });
        let mut reader = FrameReader::default();
        let small = reader.recv(b.as_fd(), None).expect("small");
        assert_eq!((small.kind, small.id), (Kind::Call, 7));
        assert_eq!(parse_call(&small.body), Ok((42, &b"hi"[..])));
        let large = reader.recv(b.as_fd(), None).expect("large");
        assert_eq!(large.body.len(), 300 << 10);
        assert!(large.body.iter().all(|byte| *byte == 0xA5));
        let empty = reader.recv(b.as_fd(), None).expect("empty");
        assert_eq!((empty.kind, empty.body.len()), (Kind::Shutdown, 0));
        writer.join().expect("writer");
        assert!(matches!(reader.recv(b.as_fd(), None), Err(IoError::Closed)));
    }

    #[test]
    fn a_silent_peer_times_out() {
        let (_a, b) = pair();
        rustix::io::ioctl_fionbio(&b, true).expect("nonblocking");
        let mut reader = FrameReader::default();
        let deadline = Instant::now() + Duration::from_millis(20);
        assert!(matches!(
            reader.recv(b.as_fd(), Some(deadline)),
            Err(IoError::TimedOut)
        ));
    }

    #[test]
    fn hello_carries_the_module_fd() {
        let (a, b) = pair();
        let file = tempfile_fd();
        send_hello(a.as_fd(), b"policy", file.as_fd()).expect("send hello");
        let (body, fd) = recv_hello(b.as_fd()).expect("recv hello");
        assert_eq!(body, b"policy");
        let stat = rustix::fs::fstat(&fd).expect("fstat");
        assert_eq!(stat.st_size, 3);
    }

    fn tempfile_fd() -> std::os::fd::OwnedFd {
        let fd = rustix::fs::memfd_create("t", rustix::fs::MemfdFlags::CLOEXEC).expect("memfd");
        rustix::io::write(&fd, b"abc").expect("write");
        fd
    }

    #[test]
    fn hello_round_trips_policy_and_config() {
        let policy = SandboxPolicy {
            address_space: Some(123 << 20),
            cpu_time: None,
            read_paths: vec!["/usr/lib".into(), "/opt/x".into()],
            allow_threads: true,
            landlock_abi: Some(5),
            ..SandboxPolicy::default()
        };
        let spin = Duration::from_micros(30);
        let body = encode_hello(&policy, spin, b"config").expect("encode");
        assert_eq!(
            decode_hello(&body),
            Ok(Hello {
                policy,
                spin,
                config: &b"config"[..]
            })
        );
        let mut other = body.clone();
        other[0] = 9;
        assert_eq!(decode_hello(&other), Err(Violation::Version(9)));
        assert_eq!(decode_hello(&body[..5]), Err(Violation::Truncated("Hello")));
    }

    #[test]
    fn the_spin_halves_while_frames_are_slow_and_recovers_at_once() {
        let max = Duration::from_micros(40);
        let mut spin = FrameReader::with_spin(max).spin;
        assert_eq!(spin.now, max);
        spin.adapt(Duration::from_millis(5));
        spin.adapt(Duration::from_millis(5));
        assert_eq!(spin.now, max / 4);
        spin.adapt(Duration::from_micros(10));
        assert_eq!(spin.now, max);
        assert_eq!(
            FrameReader::with_spin(Duration::from_secs(1)).spin.max,
            MAX_SPIN
        );
    }

    #[test]
    fn a_spinning_reader_still_sleeps_until_its_deadline() {
        let (_a, b) = pair();
        rustix::io::ioctl_fionbio(&b, true).expect("nonblocking");
        let mut reader = FrameReader::with_spin(Duration::from_micros(100));
        let deadline = Instant::now() + Duration::from_millis(20);
        assert!(matches!(
            reader.recv(b.as_fd(), Some(deadline)),
            Err(IoError::TimedOut)
        ));
    }

    #[test]
    fn truncated_call_body_is_an_error() {
        assert_eq!(parse_call(&[5, 0, 0]), Err(Violation::Truncated("Call")));
    }

    #[test]
    fn replies_round_trip_every_failure_kind() {
        let cases = [
            Ok(b"out".to_vec()),
            Err(Failure {
                kind: FailureKind::Error,
                message: "bad input".into(),
            }),
            Err(Failure {
                kind: FailureKind::Panic,
                message: "module panicked: boom".into(),
            }),
            Err(Failure {
                kind: FailureKind::UnknownStatus(-7),
                message: "odd".into(),
            }),
        ];
        for case in cases {
            let (status, mut body) = encode_reply(&case);
            if let Ok(output) = &case {
                body.extend_from_slice(output);
            }
            assert_eq!(decode_reply(status, body), Ok(case));
        }
    }
}
