//! Blocklists named in `detections.toml`: plain files with one network or address per line,
//! or Spamhaus DROP lines (`192.0.2.0/24 ; SBL123`). `#` starts a comment; text after `;` is
//! kept as the entry's reference and reported with it.
//!
//! Entries are held sorted by first address, with a running maximum of last addresses, so a
//! lookup is one binary search however the networks nest or overlap. Memory is about 24 bytes
//! per entry plus its reference text.

use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::Path;

use ipnetwork::IpNetwork;

use super::RuleError;
use super::detections::Detections;
use crate::text::cap_str;

/// One list entry; `T` is the address as an integer.
#[derive(Debug)]
struct Entry<T> {
    first: T,
    last: T,
    prefix: u8,
    list: u16,
    line: u32,
    /// The reference after `;`, in [`Blocklists::references`].
    reference: (u32, u16),
}

/// Entries of one address family, sorted by `first`.
#[derive(Debug)]
struct Table<T> {
    entries: Vec<Entry<T>>,
    /// `reach[i]`: index of the entry with the highest `last` among `entries[..=i]`.
    reach: Vec<u32>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            entries: Vec::new(),
            reach: Vec::new(),
        }
    }
}

impl<T: Ord + Copy> Table<T> {
    fn seal(&mut self) {
        self.entries.sort_by_key(|e| e.first);
        self.reach = Vec::with_capacity(self.entries.len());
        let mut best = 0usize;
        for (i, e) in self.entries.iter().enumerate() {
            if e.last > self.entries[best].last {
                best = i;
            }
            self.reach.push(best as u32);
        }
    }

    fn find(&self, addr: T) -> Option<&Entry<T>> {
        let n = self.entries.partition_point(|e| e.first <= addr);
        let best = *self.reach.get(n.checked_sub(1)?)? as usize;
        self.entries.get(best).filter(|e| e.last >= addr)
    }
}

/// All blocklists of a run.
#[derive(Debug, Default)]
pub struct Blocklists {
    names: Vec<String>,
    v4: Table<u32>,
    v6: Table<u128>,
    references: String,
}

/// Where an address was found.
#[derive(Debug, PartialEq, Eq)]
pub struct BlocklistHit<'a> {
    /// The list file as named in `detections.toml`.
    pub list: &'a str,
    pub line: u32,
    /// The entry that matched, in CIDR notation.
    pub entry: String,
    /// Text after `;` on that line (`SBL123` in DROP lists), or empty.
    pub reference: &'a str,
}

impl Blocklists {
    pub fn is_empty(&self) -> bool {
        self.v4.entries.is_empty() && self.v6.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.v4.entries.len() + self.v6.entries.len()
    }

    pub fn list_names(&self) -> &[String] {
        &self.names
    }

    /// Loads every list named in `detections`, relative to the rules directory.
    pub(super) fn load(dir: &Path, detections: &Detections) -> Result<Self, RuleError> {
        let settings = &detections.blocklisted_peer;
        let mut lists = Blocklists::default();
        for name in &settings.lists {
            let path = dir.join(name.get_ref());
            let unreadable = |e: std::io::Error| RuleError {
                file: dir.join("detections.toml"),
                line: 0,
                column: 0,
                message: format!("cannot read blocklist {}: {e}", path.display()),
            };
            let file = std::fs::File::open(&path).map_err(unreadable)?;
            lists.add(
                name.get_ref(),
                &path,
                BufReader::with_capacity(1 << 20, file),
                settings.max_entries,
            )?;
        }
        lists.v4.seal();
        lists.v6.seal();
        Ok(lists)
    }

    /// Reads one list line by line (a ten-million-line list is never held as text).
    fn add(
        &mut self,
        name: &str,
        path: &Path,
        mut reader: impl BufRead,
        max_entries: usize,
    ) -> Result<(), RuleError> {
        let error = |line: usize, column: usize, message: String| RuleError {
            file: path.to_path_buf(),
            line,
            column,
            message,
        };
        let list = u16::try_from(self.names.len())
            .map_err(|_| error(0, 0, "more than 65535 blocklists".into()))?;
        self.names.push(name.to_string());
        let mut bytes = Vec::new();
        let mut index = 0usize;
        loop {
            bytes.clear();
            let read = reader
                .read_until(b'\n', &mut bytes)
                .map_err(|e| error(0, 0, e.to_string()))?;
            if read == 0 {
                break;
            }
            index += 1;
            let raw = String::from_utf8_lossy(&bytes);
            let raw = raw.trim_end_matches(['\n', '\r']);
            let content = raw.split('#').next().unwrap_or_default();
            let (network, reference) = match content.split_once(';') {
                Some((n, r)) => (n, r.trim()),
                None => (content, ""),
            };
            let text = network.trim();
            if text.is_empty() {
                continue;
            }
            let column = text.as_ptr() as usize - raw.as_ptr() as usize + 1;
            let at = |message: String| error(index, column, message);
            let net: IpNetwork = text
                .parse()
                .map_err(|e| at(format!("invalid network {text:?}: {e}")))?;
            if net.network() != net.ip() {
                return Err(at(format!(
                    "{text:?} has host bits set; the network is {}/{}",
                    net.network(),
                    net.prefix()
                )));
            }
            if self.len() >= max_entries {
                return Err(at(format!(
                    "more than {max_entries} blocklist entries (blocklisted_peer.max_entries)"
                )));
            }
            let reference = cap_str(reference, 64);
            let start = u32::try_from(self.references.len()).unwrap_or(u32::MAX);
            self.references.push_str(reference);
            let reference = (start, reference.len() as u16);
            let line = u32::try_from(index).unwrap_or(u32::MAX);
            match net {
                IpNetwork::V4(n) => self.v4.entries.push(Entry {
                    first: u32::from(n.network()),
                    last: u32::from(n.broadcast()),
                    prefix: n.prefix(),
                    list,
                    line,
                    reference,
                }),
                IpNetwork::V6(n) => self.v6.entries.push(Entry {
                    first: u128::from(n.network()),
                    last: u128::from(n.broadcast()),
                    prefix: n.prefix(),
                    list,
                    line,
                    reference,
                }),
            }
        }
        Ok(())
    }

    /// The entry an address falls in, if any (the widest one when several do).
    pub fn find(&self, ip: IpAddr) -> Option<BlocklistHit<'_>> {
        let (list, line, reference, entry) = match ip {
            IpAddr::V4(v4) => {
                let e = self.v4.find(u32::from(v4))?;
                let net = format!("{}/{}", std::net::Ipv4Addr::from(e.first), e.prefix);
                (e.list, e.line, e.reference, net)
            }
            IpAddr::V6(v6) => {
                let e = self.v6.find(u128::from(v6))?;
                let net = format!("{}/{}", std::net::Ipv6Addr::from(e.first), e.prefix);
                (e.list, e.line, e.reference, net)
            }
        };
        let (start, len) = (reference.0 as usize, usize::from(reference.1));
        Some(BlocklistHit {
            list: self.names.get(usize::from(list)).map_or("", String::as_str),
            line,
            entry,
            reference: self.references.get(start..start + len).unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Blocklists, RuleError> {
        let mut lists = Blocklists::default();
        lists.add("drop.txt", Path::new("drop.txt"), text.as_bytes(), 100)?;
        lists.v4.seal();
        lists.v6.seal();
        Ok(lists)
    }

    const DROP: &str = "; Spamhaus DROP List 2026/11/22\n\
        ; Last-Modified: Sun, 22 Nov 2026\n\
        10.0.0.0/8 ; SBL1\n\
        192.0.2.0/24 ; SBL123\n\
        192.0.2.128/25 ; SBL124\n\
        \n\
        # a plain entry and an address\n\
        198.51.100.7\n\
        2001:db8:bad::/48\n";

    #[test]
    fn drop_format_and_plain_lines() {
        let lists = load(DROP).unwrap();
        assert_eq!(lists.len(), 5);
        let find = |ip: &str| lists.find(ip.parse().unwrap());
        let hit = find("192.0.2.200").unwrap();
        assert_eq!((hit.list, hit.reference), ("drop.txt", "SBL123"));
        assert_eq!(
            (hit.line, hit.entry.as_str()),
            (4, "192.0.2.0/24"),
            "the widest entry"
        );
        assert_eq!(find("10.255.255.255").unwrap().line, 3);
        assert_eq!(find("198.51.100.7").unwrap().entry, "198.51.100.7/32");
        assert_eq!(find("198.51.100.7").unwrap().reference, "");
        assert!(find("198.51.100.8").is_none() && find("9.255.255.255").is_none());
        assert_eq!(find("2001:db8:bad:ffff::1").unwrap().line, 9);
        assert!(find("2001:db8:bae::").is_none());
    }

    #[test]
    fn nested_entries_are_found_behind_later_starts() {
        // 10.0.0.0/8 starts first; 10.1.0.0/16 starts later but ends sooner.
        let lists = load("10.0.0.0/8\n10.1.0.0/16\n").unwrap();
        assert_eq!(lists.find("10.2.0.1".parse().unwrap()).unwrap().line, 1);
    }

    #[test]
    fn errors_name_line_and_column() {
        let err = |t: &str| load(t).unwrap_err().to_string();
        assert_eq!(
            err("10.0.0.0/8\n  10.0.0.300/24 ; SBL9\n"),
            "drop.txt:2:3: invalid network \"10.0.0.300/24\": invalid address: 10.0.0.300/24"
        );
        assert!(
            err("192.0.2.1/24\n").starts_with("drop.txt:1:1: \"192.0.2.1/24\" has host bits set")
        );
        let too_many = "10.0.0.0/8\n".repeat(101);
        assert!(err(&too_many).starts_with("drop.txt:101:1: more than 100 blocklist entries"));
    }

    #[test]
    fn v6_whole_space_and_host() {
        let lists = load("::/0\n").unwrap();
        assert!(lists.find("2001:db8::1".parse().unwrap()).is_some());
        let lists = load("2001:db8::1/128\n").unwrap();
        assert!(lists.find("2001:db8::1".parse().unwrap()).is_some());
        assert!(lists.find("2001:db8::2".parse().unwrap()).is_none());
    }
}
