//! Who may talk to an execution environment's Runtime API: its own function process, and the
//! processes it starts (a shell bootstrap's `curl`), and nobody else on the machine.
//!
//! The Runtime API hands out invocations and takes their answers; a process that could reach it
//! could take an invocation from `/next` and answer with an empty `batchItemFailures`, and the
//! messages would be deleted unhandled. It listens on 127.0.0.1 only, and on Linux every
//! connection is checked when it is accepted: the client's socket must belong to the
//! environment's process or one of its descendants (the kernel's socket diagnostics, or else
//! `/proc/net/tcp`, name the socket's inode; `/proc/<pid>/fd` its owner). Elsewhere (no
//! `/proc`) the boundary is this machine's loopback interface, as it is for AWS's own Runtime
//! Interface Emulator.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::serve::Listener;
use tokio::net::{TcpListener, TcpStream};

/// The environment's process, once started: 0 while none runs (then nothing is let in).
#[derive(Debug, Default)]
pub(crate) struct Owner(AtomicU32);

impl Owner {
    pub(crate) fn set(&self, pid: Option<u32>) {
        self.0.store(pid.unwrap_or(0), Ordering::Release);
    }

    fn get(&self) -> Option<u32> {
        Some(self.0.load(Ordering::Acquire)).filter(|pid| *pid != 0)
    }

    /// The process, waiting a moment for it: a new process may connect before its starter has
    /// recorded its pid.
    async fn started(&self) -> Option<u32> {
        for _ in 0..OWNER_WAIT_STEPS {
            if let Some(pid) = self.get() {
                return Some(pid);
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        self.get()
    }
}

/// How many 10 ms steps a connection waits for its environment's process to be recorded.
const OWNER_WAIT_STEPS: u32 = 100;

/// A listener that accepts only connections from the owner's process tree.
pub(crate) struct OwnProcessOnly {
    pub(crate) inner: TcpListener,
    pub(crate) owner: Arc<Owner>,
}

impl Listener for OwnProcessOnly {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            let (stream, peer) = Listener::accept(&mut self.inner).await;
            let Ok(local) = stream.local_addr() else { continue };
            match self.owner.started().await {
                Some(pid) if from_process_tree(pid, peer, local) => return (stream, peer),
                _ => {
                    tracing::warn!(
                        %peer,
                        "refused a connection to the function's Runtime API from a process that is not the function's"
                    );
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// Whether the client end of the connection `peer` → `local` belongs to `pid` or a process it
/// started.
#[cfg(target_os = "linux")]
fn from_process_tree(pid: u32, peer: SocketAddr, local: SocketAddr) -> bool {
    let Some(inode) = socket_inode(peer, local) else { return false };
    let wanted = format!("socket:[{inode}]");
    let mut family = vec![pid];
    let mut index = 0;
    while let Some(&process) = family.get(index) {
        if holds(process, &wanted) {
            return true;
        }
        family.extend(children(process));
        index += 1;
    }
    false
}

/// Without `/proc`, the loopback interface is the boundary (see the module's documentation).
#[cfg(not(target_os = "linux"))]
fn from_process_tree(_pid: u32, _peer: SocketAddr, _local: SocketAddr) -> bool {
    true
}

/// The inode of the TCP socket whose local end is `peer` and whose remote end is `local`: asked
/// of the kernel for that one socket (netlink `sock_diag`), or, where that is not allowed, found
/// in `/proc/net/tcp`, whose reading walks the kernel's whole connection table (under `--lambda`
/// on one core that was a fifth of all CPU, BENCHMARKS.md).
#[cfg(target_os = "linux")]
fn socket_inode(peer: SocketAddr, local: SocketAddr) -> Option<u64> {
    match sock_diag::inode(peer, local) {
        Ok(found) => found,
        Err(_) => socket_inode_in_proc(peer, local),
    }
}

/// [`socket_inode`] from `/proc/net/tcp{,6}`.
#[cfg(target_os = "linux")]
fn socket_inode_in_proc(peer: SocketAddr, local: SocketAddr) -> Option<u64> {
    let table = match peer {
        SocketAddr::V4(_) => "/proc/net/tcp",
        SocketAddr::V6(_) => "/proc/net/tcp6",
    };
    let text = std::fs::read_to_string(table).ok()?;
    inode_in(&text, peer, local)
}

/// [`socket_inode`] over a `/proc/net/tcp` text: `sl local rem st ... uid timeout inode`, the
/// addresses as hexadecimal `IP:PORT` with the IP in the kernel's byte order.
fn inode_in(table: &str, peer: SocketAddr, local: SocketAddr) -> Option<u64> {
    let (want_local, want_remote) = (proc_address(peer), proc_address(local));
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let matches = fields.get(1)?.eq_ignore_ascii_case(&want_local)
            && fields.get(2)?.eq_ignore_ascii_case(&want_remote);
        if matches { fields.get(9)?.parse().ok() } else { None }
    })
}

/// An address as `/proc/net/tcp{,6}` writes it.
fn proc_address(address: SocketAddr) -> String {
    let ip = match address {
        SocketAddr::V4(v4) => format!("{:08X}", u32::from_le_bytes(v4.ip().octets())),
        SocketAddr::V6(v6) => v6
            .ip()
            .octets()
            .chunks(4)
            .map(|word| format!("{:08X}", u32::from_le_bytes([word[0], word[1], word[2], word[3]])))
            .collect(),
    };
    format!("{ip}:{:04X}", address.port())
}

/// One socket's inode from the kernel's socket diagnostics (netlink `NETLINK_SOCK_DIAG`,
/// `SOCK_DIAG_BY_FAMILY` for the exact pair of ends), without reading any table.
#[cfg(target_os = "linux")]
mod sock_diag {
    use std::net::{IpAddr, SocketAddr};

    use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType, netlink};

    /// `SOCK_DIAG_BY_FAMILY`, the request; `NLMSG_ERROR`, the answer when there is no such socket.
    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    const NLMSG_ERROR: u16 = 2;
    const NLM_F_REQUEST: u16 = 1;
    const ENOENT: i32 = 2;
    /// `AF_INET`, `AF_INET6`, `IPPROTO_TCP`.
    const INET: u8 = 2;
    const INET6: u8 = 10;
    const TCP: u8 = 6;
    /// Where `idiag_inode` sits in the answer: after the netlink header (16 bytes) and
    /// `family, state, timer, retrans` (4), the socket id (48), `expires, rqueue, wqueue, uid` (16).
    const INODE_AT: usize = 16 + 4 + 48 + 16;

    /// `Ok(None)`: the kernel knows no such socket. `Err`: it could not be asked.
    pub(super) fn inode(from: SocketAddr, to: SocketAddr) -> std::io::Result<Option<u64>> {
        let socket = rustix::net::socket_with(
            AddressFamily::NETLINK,
            SocketType::DGRAM,
            SocketFlags::CLOEXEC,
            Some(netlink::SOCK_DIAG),
        )?;
        rustix::net::send(&socket, &request(from, to), SendFlags::empty())?;
        let mut answer = [0u8; 512];
        let (received, _) = rustix::net::recv(&socket, &mut answer[..], RecvFlags::empty())?;
        inode_in(&answer[..received])
    }

    /// The request for the TCP socket whose local end is `from` and whose remote end is `to`: a
    /// netlink header, then `inet_diag_req_v2` (family, protocol, extensions, padding, every
    /// state, the socket id with no cookie).
    fn request(from: SocketAddr, to: SocketAddr) -> Vec<u8> {
        let mut message = Vec::with_capacity(72);
        message.extend_from_slice(&72u32.to_ne_bytes()); // nlmsg_len
        message.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        message.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
        message.extend_from_slice(&[0; 8]); // nlmsg_seq, nlmsg_pid
        message.extend_from_slice(&[if from.is_ipv4() { INET } else { INET6 }, TCP, 0, 0]);
        message.extend_from_slice(&u32::MAX.to_ne_bytes()); // idiag_states: all
        message.extend_from_slice(&from.port().to_be_bytes());
        message.extend_from_slice(&to.port().to_be_bytes());
        message.extend_from_slice(&address(from.ip()));
        message.extend_from_slice(&address(to.ip()));
        message.extend_from_slice(&[0; 4]); // idiag_if
        message.extend_from_slice(&[0xff; 8]); // idiag_cookie: INET_DIAG_NOCOOKIE
        message
    }

    /// An address as `inet_diag_sockid` holds it: 16 bytes, network order, IPv4 in the first 4.
    fn address(ip: IpAddr) -> [u8; 16] {
        let mut bytes = [0; 16];
        match ip {
            IpAddr::V4(v4) => bytes[..4].copy_from_slice(&v4.octets()),
            IpAddr::V6(v6) => bytes = v6.octets(),
        }
        bytes
    }

    /// The inode an answer names: none when the kernel says there is no such socket (`ENOENT`);
    /// any other error, or an answer too short, is an error (the caller reads `/proc` instead).
    pub(super) fn inode_in(answer: &[u8]) -> std::io::Result<Option<u64>> {
        let word = |at: usize| -> std::io::Result<[u8; 4]> {
            answer
                .get(at..at + 4)
                .and_then(|bytes| bytes.try_into().ok())
                .ok_or_else(|| std::io::Error::other("a short answer from sock_diag"))
        };
        let [kind_low, kind_high, ..] = word(4)?;
        match u16::from_ne_bytes([kind_low, kind_high]) {
            NLMSG_ERROR => match -i32::from_ne_bytes(word(16)?) {
                ENOENT => Ok(None),
                errno => Err(std::io::Error::from_raw_os_error(errno)),
            },
            SOCK_DIAG_BY_FAMILY => Ok(Some(u64::from(u32::from_ne_bytes(word(INODE_AT)?)))),
            _ => Err(std::io::Error::other("an unexpected answer from sock_diag")),
        }
    }
}

/// Whether process `pid` has the file `wanted` (`socket:[inode]`) open.
#[cfg(target_os = "linux")]
fn holds(pid: u32, wanted: &str) -> bool {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return false };
    entries
        .flatten()
        .any(|entry| std::fs::read_link(entry.path()).is_ok_and(|target| target.as_os_str() == wanted))
}

/// The processes `pid` started, from each of its threads' `children` list.
#[cfg(target_os = "linux")]
fn children(pid: u32) -> Vec<u32> {
    let Ok(threads) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    threads
        .flatten()
        .filter_map(|thread| std::fs::read_to_string(thread.path().join("children")).ok())
        .flat_map(|text| text.split_whitespace().filter_map(|n| n.parse().ok()).collect::<Vec<u32>>())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_written_as_the_kernel_writes_it() {
        assert_eq!(proc_address("127.0.0.1:4566".parse().unwrap()), "0100007F:11D6");
        assert_eq!(proc_address("[::1]:80".parse().unwrap()), "00000000000000000000000001000000:0050");
    }

    #[test]
    fn the_socket_of_a_connection_is_found_by_both_of_its_ends() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   \
                     0: 0100007F:A000 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 4242 1 0 20 4 30 10 -1\n   \
                     1: 0100007F:1F90 0100007F:A000 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0 20 4 30 10 -1\n";
        let (client, server) = ("127.0.0.1:40960".parse().unwrap(), "127.0.0.1:8080".parse().unwrap());
        assert_eq!(inode_in(table, client, server), Some(4242));
        assert_eq!(inode_in(table, server, client), Some(4343));
        assert_eq!(inode_in(table, "127.0.0.1:1".parse().unwrap(), server), None);
    }

    /// A loopback connection: its client end, its server end, and the addresses of both.
    #[cfg(target_os = "linux")]
    async fn loopback_connection() -> (TcpStream, TcpStream, SocketAddr, SocketAddr) {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let address = listener.local_addr().unwrap();
        let client = TcpStream::connect(address).await.unwrap();
        let (server_end, peer) = listener.accept().await.unwrap();
        (client, server_end, peer, address)
    }

    /// A netlink answer of `kind` whose payload starts with `word`, `length` bytes long.
    #[cfg(target_os = "linux")]
    fn answer(kind: u16, word: i32, length: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; length.max(20)];
        bytes[4..6].copy_from_slice(&kind.to_ne_bytes());
        bytes[16..20].copy_from_slice(&word.to_ne_bytes());
        bytes.truncate(length);
        bytes
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_sock_diag_answer_is_an_inode_none_or_an_error_and_never_a_panic() {
        let mut found = answer(20, 0, 120);
        found[84..88].copy_from_slice(&4242u32.to_ne_bytes());
        assert_eq!(sock_diag::inode_in(&found).unwrap(), Some(4242));
        // No such socket: none, so the connection is refused.
        assert_eq!(sock_diag::inode_in(&answer(2, -2, 36)).unwrap(), None);
        // Any other error, an unknown kind, or a short answer: an error, so /proc is read instead.
        let denied = sock_diag::inode_in(&answer(2, -1, 36)).unwrap_err();
        assert_eq!(denied.raw_os_error(), Some(1));
        assert!(sock_diag::inode_in(&answer(3, 0, 120)).is_err());
        assert!(sock_diag::inode_in(&answer(20, 0, 80)).is_err());
        assert!(sock_diag::inode_in(&[]).is_err());
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_kernel_and_proc_net_tcp_name_the_same_socket_for_a_connection() {
        let (_client, _server_end, peer, address) = loopback_connection().await;
        let asked = sock_diag::inode(peer, address).expect("netlink sock_diag answers on this machine");
        assert!(asked.is_some(), "the kernel knows the client's socket");
        assert_eq!(asked, socket_inode_in_proc(peer, address));
        // The server's end is another socket; an end that is not connected is none.
        assert_ne!(sock_diag::inode(address, peer).unwrap(), asked);
        assert_eq!(sock_diag::inode("127.0.0.1:1".parse().unwrap(), address).unwrap(), None);
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_connection_of_this_process_is_from_its_tree_and_not_from_another_process() {
        let (client, _server_end, peer, address) = loopback_connection().await;
        assert_eq!(peer, client.local_addr().unwrap());
        assert!(from_process_tree(std::process::id(), peer, address));
        // Another process (one this test started, so not an ancestor) does not hold the socket.
        let mut sleeper = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        assert!(!from_process_tree(sleeper.id(), peer, address));
        sleeper.kill().unwrap();
        sleeper.wait().unwrap();
    }
}
