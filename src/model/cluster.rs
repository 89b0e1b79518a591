//! The data-plane cluster's configuration, as the Raft state machine holds it (DATAPLANE.md, "Many
//! nodes"): members (the failure domains), the scheme and hot spares, every drive and its
//! state, the IO status, and an epoch bumped by every change. Commands are applied in log
//! order on every member, so `apply` must be deterministic: no clock, no randomness, no I/O.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A member: one node, one failure domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub name: String,
    /// Where its agent's cluster service listens (host:port).
    pub address: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum IoStatus {
    #[default]
    Stopped,
    Starting,
    Started,
}

impl IoStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            IoStatus::Stopped => "STOPPED",
            IoStatus::Starting => "STARTING",
            IoStatus::Started => "STARTED",
        }
    }
}

/// A data-plane drive as the cluster knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriveRec {
    /// The member holding it.
    pub node: u64,
    pub path: String,
    /// ACTIVE, PHASING_IN, PHASING_OUT, INACTIVE or FAILED.
    pub state: String,
}

fn active() -> String {
    "ACTIVE".into()
}

const DRIVE_STATES: [&str; 5] = ["ACTIVE", "PHASING_IN", "PHASING_OUT", "INACTIVE", "FAILED"];

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterConfig {
    /// None until `Create` is applied.
    pub cluster: Option<String>,
    pub k: usize,
    pub m: usize,
    pub hot_spares: usize,
    pub members: BTreeMap<u64, Member>,
    /// Drive id (UUID) → record.
    pub drives: BTreeMap<String, DriveRec>,
    pub io: IoStatus,
    /// Bumped by every applied change.
    pub epoch: u64,
}

/// A change to the configuration, proposed through Raft.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    Create {
        cluster: String,
        k: usize,
        m: usize,
        hot_spares: usize,
        members: BTreeMap<u64, Member>,
    },
    AddDrive {
        id: String,
        node: u64,
        path: String,
        /// The drive's state as its node sees it (ACTIVE unless said).
        #[serde(default = "active")]
        state: String,
    },
    SetDriveState {
        id: String,
        state: String,
    },
    /// A drive taken out of its node's store (`axon drive remove`).
    RemoveDrive {
        id: String,
    },
    SetIo(IoStatus),
}

/// What applying a command did: the new epoch, or why it was refused (nothing changed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub epoch: u64,
    pub refused: Option<String>,
    /// For `SetIo`: the IO status once applied (STARTED when STARTING was asked of a
    /// cluster already started: nothing changed).
    #[serde(default)]
    pub io: Option<IoStatus>,
}

impl ClusterConfig {
    /// Failure domains a stripe and the hot spares need: k + m + spares.
    pub fn domains_needed(k: usize, m: usize, hot_spares: usize) -> usize {
        k + m + hot_spares
    }

    /// Why IO cannot start now, every reason (empty: it can).
    pub fn start_io_blockers(&self) -> Vec<String> {
        let mut why = Vec::new();
        if self.cluster.is_none() {
            why.push("no cluster has been created".to_string());
            return why;
        }
        let need = Self::domains_needed(self.k, self.m, self.hot_spares);
        let with_active: usize = self
            .members
            .keys()
            .filter(|n| {
                self.drives
                    .values()
                    .any(|d| d.node == **n && d.state == "ACTIVE")
            })
            .count();
        if with_active < need {
            why.push(format!(
                "{with_active} failure domains have an ACTIVE drive; {}+{} with {} hot spares needs {need}",
                self.k, self.m, self.hot_spares
            ));
        }
        why
    }

    pub fn apply(&mut self, cmd: &Command) -> Applied {
        let mut a = self.apply_command(cmd);
        if matches!(cmd, Command::SetIo(_)) {
            a.io = Some(self.io);
        }
        a
    }

    fn apply_command(&mut self, cmd: &Command) -> Applied {
        let refused = |why: String| Applied {
            epoch: 0,
            refused: Some(why),
            ..Default::default()
        };
        let r = match cmd {
            Command::Create {
                cluster,
                k,
                m,
                hot_spares,
                members,
            } => {
                if let Some(c) = &self.cluster {
                    // The same create again (a retry whose answer was lost): done already.
                    if c == cluster
                        && self.k == *k
                        && self.m == *m
                        && self.hot_spares == *hot_spares
                        && self.members == *members
                    {
                        return Applied {
                            epoch: self.epoch,
                            refused: None,
                            ..Default::default()
                        };
                    }
                    return refused(format!(
                        "cluster {c} already exists: {}+{} with {} hot spares, {} members (a formed cluster's scheme and members do not change; create resumes only the same one)",
                        self.k,
                        self.m,
                        self.hot_spares,
                        self.members.len()
                    ));
                }
                if !(3..=16).contains(k) || !(2..=4).contains(m) || k <= m {
                    return refused(format!(
                        "scheme {k}+{m}: data chunks must be 3..16, parity 2..4, and more data than parity"
                    ));
                }
                let need = Self::domains_needed(*k, *m, *hot_spares);
                if members.len() < need {
                    return refused(format!(
                        "{k}+{m} with {hot_spares} hot spares needs {need} failure domains (servers), {} given",
                        members.len()
                    ));
                }
                self.cluster = Some(cluster.clone());
                self.k = *k;
                self.m = *m;
                self.hot_spares = *hot_spares;
                self.members = members.clone();
                Ok(())
            }
            Command::AddDrive {
                id,
                node,
                path,
                state,
            } => {
                let rec = DriveRec {
                    node: *node,
                    path: path.clone(),
                    state: state.clone(),
                };
                if !self.members.contains_key(node) {
                    Err(format!("node {node} is not a member"))
                } else if !DRIVE_STATES.contains(&state.as_str()) {
                    Err(format!("unknown drive state {state:?}"))
                } else if let Some(cur) = self.drives.get(id) {
                    if *cur == rec {
                        // The same add again (a retry): done already.
                        return Applied {
                            epoch: self.epoch,
                            refused: None,
                            ..Default::default()
                        };
                    }
                    Err(format!("drive {id} is already in the cluster"))
                } else {
                    self.drives.insert(id.clone(), rec);
                    Ok(())
                }
            }
            Command::SetDriveState { id, state } => {
                if !DRIVE_STATES.contains(&state.as_str()) {
                    Err(format!("unknown drive state {state:?}"))
                } else {
                    match self.drives.get_mut(id) {
                        Some(d) => {
                            d.state = state.clone();
                            Ok(())
                        }
                        None => Err(format!("no drive {id} in the cluster")),
                    }
                }
            }
            Command::RemoveDrive { id } => match self.drives.remove(id) {
                Some(_) => Ok(()),
                None => Err(format!("no drive {id} in the cluster")),
            },
            Command::SetIo(s)
                if *s == self.io || (*s == IoStatus::Starting && self.io == IoStatus::Started) =>
            {
                // Already there (a retry), or asked to start a cluster already started
                // (which must not pass through STARTING: that refuses IO): nothing changes.
                return Applied {
                    epoch: self.epoch,
                    refused: None,
                    ..Default::default()
                };
            }
            Command::SetIo(s) => {
                let blockers = self.start_io_blockers();
                if *s != IoStatus::Stopped && !blockers.is_empty() {
                    Err(format!("IO cannot start: {}", blockers.join("; ")))
                } else {
                    self.io = *s;
                    Ok(())
                }
            }
        };
        match r {
            Ok(()) => {
                self.epoch += 1;
                Applied {
                    epoch: self.epoch,
                    refused: None,
                    ..Default::default()
                }
            }
            Err(why) => refused(why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(n: u64) -> BTreeMap<u64, Member> {
        (1..=n)
            .map(|i| {
                (
                    i,
                    Member {
                        name: format!("axon{i:03}"),
                        address: format!("127.0.1.{i}:14010"),
                    },
                )
            })
            .collect()
    }

    fn create(n: u64, spares: usize) -> Command {
        Command::Create {
            cluster: "c1".into(),
            k: 16,
            m: 4,
            hot_spares: spares,
            members: members(n),
        }
    }

    #[test]
    fn a_cluster_needs_k_plus_m_plus_spares_domains_and_says_so() {
        let mut c = ClusterConfig::default();
        let r = c.apply(&create(21, 2));
        assert_eq!(
            r.refused.as_deref(),
            Some("16+4 with 2 hot spares needs 22 failure domains (servers), 21 given")
        );
        assert_eq!(c, ClusterConfig::default(), "a refusal changed the config");
        assert_eq!(c.apply(&create(22, 2)).epoch, 1);
        // The same create again is a retry, done already; another one is refused.
        assert_eq!(
            c.apply(&create(22, 2)),
            Applied {
                epoch: 1,
                refused: None,
                ..Default::default()
            }
        );
        assert!(
            c.apply(&create(23, 2))
                .refused
                .unwrap()
                .contains("already exists")
        );
    }

    #[test]
    fn io_starts_only_with_enough_active_domains_and_lists_what_is_missing() {
        let mut c = ClusterConfig::default();
        c.apply(&create(22, 2));
        let r = c.apply(&Command::SetIo(IoStatus::Started));
        assert!(
            r.refused.as_deref().unwrap().contains(
                "0 failure domains have an ACTIVE drive; 16+4 with 2 hot spares needs 22"
            ),
            "{r:?}"
        );
        for n in 1..=22 {
            c.apply(&Command::AddDrive {
                id: format!("d{n}"),
                node: n,
                path: "/dev/nvme0n1".into(),
                state: "ACTIVE".into(),
            });
        }
        assert_eq!(c.apply(&Command::SetIo(IoStatus::Started)).refused, None);
        assert_eq!(c.io, IoStatus::Started);
        // start-io again on a started cluster: it stays STARTED (no STARTING, which would
        // refuse IO meanwhile), and says so; the epoch does not move.
        let before = c.epoch;
        let r = c.apply(&Command::SetIo(IoStatus::Starting));
        assert_eq!(
            (r.refused, r.io, r.epoch),
            (None, Some(IoStatus::Started), before)
        );
        assert_eq!(c.io, IoStatus::Started);
        // stop-io still stops it, and STARTING then follows from STOPPED.
        assert_eq!(
            c.apply(&Command::SetIo(IoStatus::Stopped)).io,
            Some(IoStatus::Stopped)
        );
        assert_eq!(
            c.apply(&Command::SetIo(IoStatus::Starting)).io,
            Some(IoStatus::Starting)
        );
        assert_eq!(
            c.apply(&Command::SetIo(IoStatus::Started)).io,
            Some(IoStatus::Started)
        );
        let r = c.apply(&Command::SetDriveState {
            id: "d3".into(),
            state: "BROKEN".into(),
        });
        assert!(r.refused.unwrap().contains("unknown drive state"));
        assert_eq!(c.epoch, 27);
    }
}
