//! Who may talk to an execution environment's Runtime API: its own function process, and the
//! processes it starts (a shell bootstrap's `curl`), and nobody else on the machine.
//!
//! The Runtime API hands out invocations and takes their answers; a process that could reach it
//! could take an invocation from `/next` and answer with an empty `batchItemFailures`, and the
//! messages would be deleted unhandled. It listens on 127.0.0.1 only, and on Linux every
//! connection is checked when it is accepted: the client's socket must belong to the
//! environment's process or one of its descendants (`/proc/net/tcp` names the socket's inode,
//! `/proc/<pid>/fd` its owner). Elsewhere (no `/proc`) the boundary is this machine's loopback
//! interface, as it is for AWS's own Runtime Interface Emulator.

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

/// The inode of the TCP socket whose local end is `peer` and whose remote end is `local`.
#[cfg(target_os = "linux")]
fn socket_inode(peer: SocketAddr, local: SocketAddr) -> Option<u64> {
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

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_connection_of_this_process_is_from_its_tree_and_not_from_another_process() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let address = listener.local_addr().unwrap();
        let client = TcpStream::connect(address).await.unwrap();
        let (_server_end, peer) = listener.accept().await.unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        assert!(from_process_tree(std::process::id(), peer, address));
        // Another process (one this test started, so not an ancestor) does not hold the socket.
        let mut sleeper = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        assert!(!from_process_tree(sleeper.id(), peer, address));
        sleeper.kill().unwrap();
        sleeper.wait().unwrap();
    }
}
