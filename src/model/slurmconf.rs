//! slurm.conf and cgroup.conf, read the way Slurm reads them (`s_p_parse_file`): one or
//! more `Key=Value` pairs a line, keys case-insensitive, `#` to the end of the line a
//! comment (`\#` a literal `#`), a `\` at the end of a line joins the next, values in
//! double quotes may hold spaces. A line starting with `NodeName=` describes nodes (its
//! names a host list, `NodeName=DEFAULT` the defaults of the lines after it);
//! `PartitionName=`, `DownNodes=`, `FrontendName=` and `NodeSet=` lines are kept whole;
//! `Include FILE` pulls in another file, which the caller reads (this module does no I/O).
//! A key Slurm does not know, a line that is not `Key=Value` or binary data is an error
//! naming the file and line: slurmctld refuses such a file too.

use crate::model::hostlist;
use std::collections::BTreeMap;
use std::fmt;

/// Files `Include` may nest (slurm.conf → a → b …), and files in all.
pub const MAX_INCLUDE_DEPTH: usize = 8;
pub const MAX_FILES: usize = 64;
/// Node names all NodeName lines may name together.
pub const MAX_NODE_NAMES: usize = hostlist::MAX_HOSTS;
/// Longest logical line (continuations joined).
pub const MAX_LINE_BYTES: usize = 256 * 1024;

/// Where a setting was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loc {
    pub file: String,
    pub line: usize,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// Why a file cannot be read as slurm.conf or cgroup.conf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub at: Loc,
    pub what: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.what)
    }
}

impl std::error::Error for ParseError {}

/// One `Key=Value`, with the key as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub key: String,
    pub value: String,
    pub at: Loc,
}

/// One NodeName line, with the `NodeName=DEFAULT` values before it filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEntry {
    /// The host list as written (`axon[001-200]`).
    pub names_text: String,
    pub names: Vec<String>,
    /// By lower-case key; `NodeName` itself is not among them.
    pub params: BTreeMap<String, Setting>,
    pub at: Loc,
}

impl NodeEntry {
    pub fn get(&self, key: &str) -> Option<&Setting> {
        self.params.get(&key.to_ascii_lowercase())
    }

    /// Whether this line describes `host` (its name, or its short name: the part before
    /// the first dot, which slurmd matches), by NodeName or NodeHostname.
    pub fn names_host(&self, host: &str) -> bool {
        let short = host.split('.').next().unwrap_or(host);
        let hit = |n: &str| n.eq_ignore_ascii_case(host) || n.eq_ignore_ascii_case(short);
        if self.names.iter().any(|n| hit(n)) {
            return true;
        }
        self.get("NodeHostname")
            .is_some_and(|h| hostlist::expand(&h.value).is_ok_and(|v| v.iter().any(|n| hit(n))))
    }
}

/// A parsed slurm.conf (or cgroup.conf: settings only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlurmConf {
    /// Top-level settings by lower-case key; a later one replaces an earlier one.
    pub settings: BTreeMap<String, Setting>,
    pub nodes: Vec<NodeEntry>,
    /// The files read, the top one first.
    pub files: Vec<String>,
}

impl SlurmConf {
    pub fn get(&self, key: &str) -> Option<&Setting> {
        self.settings.get(&key.to_ascii_lowercase())
    }

    /// The NodeName line that describes `host`.
    pub fn node(&self, host: &str) -> Option<&NodeEntry> {
        self.nodes.iter().find(|n| n.names_host(host))
    }
}

/// Which file this is: the keys it may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    SlurmConf,
    CgroupConf,
}

impl Dialect {
    fn name(self) -> &'static str {
        match self {
            Dialect::SlurmConf => "slurm.conf",
            Dialect::CgroupConf => "cgroup.conf",
        }
    }

    fn knows(self, key: &str) -> bool {
        let keys: &[&str] = match self {
            Dialect::SlurmConf => SLURM_CONF_KEYS,
            Dialect::CgroupConf => CGROUP_CONF_KEYS,
        };
        keys.iter().any(|k| k.eq_ignore_ascii_case(key))
    }
}

/// Reads an included file: given the path as written and the including file's name, the
/// included file's name (for messages) and text, or why it cannot be read.
pub type IncludeReader<'a> = dyn FnMut(&str, &str) -> Result<(String, String), String> + 'a;

/// Parses `text`, the contents of the file called `name`. `include` reads the files that
/// `Include` lines name (the collector resolves them relative to the including file).
pub fn parse(
    dialect: Dialect,
    name: &str,
    text: &str,
    include: &mut IncludeReader,
) -> Result<SlurmConf, ParseError> {
    let mut p = Parser {
        dialect,
        conf: SlurmConf::default(),
        default_node: BTreeMap::new(),
        node_names: 0,
    };
    p.file(name, text, 0, include)?;
    Ok(p.conf)
}

struct Parser {
    dialect: Dialect,
    conf: SlurmConf,
    default_node: BTreeMap<String, Setting>,
    node_names: usize,
}

/// Lines of `text` with comments stripped and continuations joined, each with the number
/// of its first physical line.
fn logical_lines(name: &str, text: &str) -> Result<Vec<(usize, String)>, ParseError> {
    let err = |line: usize, what: String| ParseError {
        at: Loc {
            file: name.to_string(),
            line,
        },
        what,
    };
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.split('\n').enumerate() {
        let n = i + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if let Some(c) = raw.chars().find(|c| c.is_control() && *c != '\t') {
            return Err(err(
                n,
                format!(
                    "binary data (control character {:#04x}): not a text configuration file",
                    c as u32
                ),
            ));
        }
        // Strip the comment: `#` not preceded by a backslash.
        let mut line = String::with_capacity(raw.len());
        let mut chars = raw.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if chars.peek() == Some(&'#') => {
                    line.push('#');
                    chars.next();
                }
                '#' => break,
                c => line.push(c),
            }
        }
        let (start, mut acc) = pending.take().unwrap_or((n, String::new()));
        // Slurm drops the backslash and reads on: the next line follows directly.
        let continued = line.trim_end().ends_with('\\');
        if continued {
            let t = line.trim_end();
            acc.push_str(&t[..t.len() - 1]);
        } else {
            acc.push_str(&line);
        }
        if acc.len() > MAX_LINE_BYTES {
            return Err(err(
                start,
                format!("a line longer than {MAX_LINE_BYTES} bytes"),
            ));
        }
        if continued {
            pending = Some((start, acc));
        } else if !acc.trim().is_empty() {
            out.push((start, acc));
        }
    }
    if let Some((start, acc)) = pending {
        if !acc.trim().is_empty() {
            out.push((start, acc));
        }
    }
    Ok(out)
}

/// The `Key=Value` tokens of a line; a value in double quotes may hold blanks.
fn tokens(line: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.peek() != Some(&'=') {
            return Err(format!("expected Key=Value, found `{}`", clip(&key)));
        }
        chars.next();
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut closed = false;
            for c in chars.by_ref() {
                if c == '"' {
                    closed = true;
                    break;
                }
                value.push(c);
            }
            if !closed {
                return Err(format!("`{}`: unterminated double quote", clip(&key)));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        if key.is_empty() {
            return Err(format!("`={}`: a value without a key", clip(&value)));
        }
        out.push((key, value));
    }
}

fn clip(s: &str) -> String {
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s.to_string()
    }
}

impl Parser {
    fn file(
        &mut self,
        name: &str,
        text: &str,
        depth: usize,
        include: &mut IncludeReader,
    ) -> Result<(), ParseError> {
        self.conf.files.push(name.to_string());
        for (n, line) in logical_lines(name, text)? {
            let at = Loc {
                file: name.to_string(),
                line: n,
            };
            let err = |what: String| ParseError {
                at: at.clone(),
                what,
            };
            let trimmed = line.trim();
            // `Include FILE` (no `=`), as s_p_parse_file takes it, any case.
            let first = trimmed.split_whitespace().next().unwrap_or("");
            if first.eq_ignore_ascii_case("include") && !first.contains('=') {
                let path = trimmed[first.len()..].trim();
                if path.is_empty() {
                    return Err(err("`Include` without a file".into()));
                }
                if depth + 1 >= MAX_INCLUDE_DEPTH {
                    return Err(err(format!(
                        "`Include {path}`: includes nested more than {MAX_INCLUDE_DEPTH} deep (a loop?)"
                    )));
                }
                if self.conf.files.len() >= MAX_FILES {
                    return Err(err(format!(
                        "`Include {path}`: more than {MAX_FILES} files included"
                    )));
                }
                let (iname, itext) =
                    include(path, name).map_err(|e| err(format!("`Include {path}`: {e}")))?;
                self.file(&iname, &itext, depth + 1, include)?;
                continue;
            }
            let toks = tokens(trimmed).map_err(err)?;
            let Some((k0, v0)) = toks.first() else {
                continue;
            };
            let k0l = k0.to_ascii_lowercase();
            if self.dialect == Dialect::SlurmConf && k0l == "nodename" {
                self.node_line(&toks, v0, at)?;
                continue;
            }
            if self.dialect == Dialect::SlurmConf
                && ["partitionname", "downnodes", "frontendname", "nodeset"].contains(&k0l.as_str())
            {
                // Lines of their own kind: Slurm checks their keys; the checks need none.
                continue;
            }
            for (k, v) in toks {
                if !self.dialect.knows(&k) {
                    return Err(err(format!(
                        "unknown key `{}`: not a {} parameter (misspelt? slurmctld refuses the file too)",
                        clip(&k),
                        self.dialect.name()
                    )));
                }
                self.conf.settings.insert(
                    k.to_ascii_lowercase(),
                    Setting {
                        key: k,
                        value: v,
                        at: at.clone(),
                    },
                );
            }
        }
        Ok(())
    }

    fn node_line(
        &mut self,
        toks: &[(String, String)],
        names: &str,
        at: Loc,
    ) -> Result<(), ParseError> {
        let err = |what: String| ParseError {
            at: at.clone(),
            what,
        };
        let mut params = BTreeMap::new();
        for (k, v) in &toks[1..] {
            if !NODE_KEYS.iter().any(|x| x.eq_ignore_ascii_case(k)) {
                return Err(err(format!(
                    "unknown key `{}` on a NodeName line (misspelt? slurmctld refuses the file too)",
                    clip(k)
                )));
            }
            params.insert(
                k.to_ascii_lowercase(),
                Setting {
                    key: k.clone(),
                    value: v.clone(),
                    at: at.clone(),
                },
            );
        }
        if names.eq_ignore_ascii_case("DEFAULT") {
            self.default_node.extend(params);
            return Ok(());
        }
        if names.is_empty() {
            return Err(err("`NodeName=` without a name".into()));
        }
        let expanded = hostlist::expand(names).map_err(|e| err(format!("NodeName: {e}")))?;
        self.node_names += expanded.len();
        if self.node_names > MAX_NODE_NAMES {
            return Err(err(format!(
                "the NodeName lines name more than {MAX_NODE_NAMES} nodes"
            )));
        }
        let mut all = self.default_node.clone();
        all.extend(params);
        self.conf.nodes.push(NodeEntry {
            names_text: names.to_string(),
            names: expanded,
            params: all,
            at,
        });
        Ok(())
    }
}

/// The keys of a NodeName line (slurm.conf(5), NODE CONFIGURATION, up to Slurm 25.05;
/// those of 22.05 checked against its parser as `SLURM_CONF_KEYS` were).
const NODE_KEYS: &[&str] = &[
    "BcastAddr",
    "Boards",
    "Comment",
    "CoreSpecCount",
    "CoresPerSocket",
    "CPUs",
    "CpuBind",
    "CpuSpecList",
    "Extra",
    "Feature",
    "Features",
    "Gres",
    "MemSpecLimit",
    "NodeAddr",
    "NodeHostname",
    "Parameters",
    "Port",
    "Procs",
    "RealMemory",
    "Reason",
    "RestrictedCoresPerGPU",
    "Sockets",
    "SocketsPerBoard",
    "State",
    "ThreadsPerCore",
    "TmpDisk",
    "Topology",
    "Weight",
];

/// cgroup.conf(5)'s parameters, Slurm 20.11 to 25.05.
const CGROUP_CONF_KEYS: &[&str] = &[
    "AllowedDevicesFile",
    "AllowedKmemSpace",
    "AllowedRAMSpace",
    "AllowedSwapSpace",
    "CgroupAutomount",
    "CgroupMountpoint",
    "CgroupPlugin",
    "CgroupReleaseAgentDir",
    "CgroupSlice",
    "ConstrainCores",
    "ConstrainDevices",
    "ConstrainKmemSpace",
    "ConstrainRAMSpace",
    "ConstrainSwapSpace",
    "EnableControllers",
    "EnableExtraControllers",
    "IgnoreSystemd",
    "IgnoreSystemdOnFailure",
    "MaxKmemPercent",
    "MaxRAMPercent",
    "MaxSwapPercent",
    "MemoryLimitEnforcement",
    "MemoryLimitThreshold",
    "MemorySwappiness",
    "MinKmemSpace",
    "MinRAMSpace",
    "SignalChildrenProcesses",
    "SystemdTimeout",
    "TaskAffinity",
];

/// slurm.conf(5)'s parameters: the Slurm 22.05 manual's list (each one accepted by 22.05's
/// own parser, `scontrol show config`, and none it accepts missing), and those added up to
/// 25.05.
const SLURM_CONF_KEYS: &[&str] = &[
    "AccountingStorageBackupHost",
    "AccountingStorageEnforce",
    "AccountingStorageExternalHost",
    "AccountingStorageHost",
    "AccountingStorageParameters",
    "AccountingStoragePass",
    "AccountingStoragePort",
    "AccountingStorageTRES",
    "AccountingStorageType",
    "AccountingStorageUser",
    "AccountingStoreFlags",
    "AcctGatherEnergyType",
    "AcctGatherFilesystemType",
    "AcctGatherInterconnectType",
    "AcctGatherNodeFreq",
    "AcctGatherProfileType",
    "AllowSpecResourcesUsage",
    "AuthAltParameters",
    "AuthAltTypes",
    "AuthInfo",
    "AuthType",
    "BackupAddr",
    "BackupController",
    "BatchStartTimeout",
    "BcastExclude",
    "BcastParameters",
    "BurstBufferType",
    "CertgenParameters",
    "CertgenType",
    "CertmgrParameters",
    "CertmgrType",
    "CliFilterParameters",
    "CliFilterPlugins",
    "ClusterName",
    "CommunicationParameters",
    "CompleteWait",
    "ControlAddr",
    "ControlMachine",
    "CoreSpecPlugin",
    "CpuFreqDef",
    "CpuFreqGovernors",
    "CredType",
    "DataParserParameters",
    "DebugFlags",
    "DefCpuPerGPU",
    "DefMemPerCPU",
    "DefMemPerGPU",
    "DefMemPerNode",
    "DependencyParameters",
    "DisableRootJobs",
    "EioTimeout",
    "EnforcePartLimits",
    "Epilog",
    "EpilogMsgTime",
    "EpilogSlurmctld",
    "EpilogTimeout",
    "ExtSensorsFreq",
    "ExtSensorsType",
    "FairShareDampeningFactor",
    "FederationParameters",
    "FirstJobId",
    "GetEnvTimeout",
    "GpuFreqDef",
    "GresTypes",
    "GroupUpdateForce",
    "GroupUpdateTime",
    "HashPlugin",
    "HealthCheckInterval",
    "HealthCheckNodeState",
    "HealthCheckProgram",
    "HttpParserType",
    "InactiveLimit",
    "InteractiveStepOptions",
    "JobAcctGatherFrequency",
    "JobAcctGatherParams",
    "JobAcctGatherType",
    "JobCompHost",
    "JobCompLoc",
    "JobCompParams",
    "JobCompPass",
    "JobCompPort",
    "JobCompType",
    "JobCompUser",
    "JobContainerType",
    "JobFileAppend",
    "JobRequeue",
    "JobSubmitPlugins",
    "KillOnBadExit",
    "KillWait",
    "LaunchParameters",
    "LaunchType",
    "Licenses",
    "LogTimeFormat",
    "MailDomain",
    "MailProg",
    "MaxArraySize",
    "MaxBatchRequeue",
    "MaxDBDMsgs",
    "MaxJobCount",
    "MaxJobId",
    "MaxMemPerCPU",
    "MaxMemPerNode",
    "MaxNodeCount",
    "MaxStepCount",
    "MaxTasksPerNode",
    "MCSParameters",
    "MCSPlugin",
    "MessageTimeout",
    "MetricsType",
    "MinJobAge",
    "MpiDefault",
    "MpiParams",
    "NamespaceType",
    "NodeFeaturesPlugins",
    "OverTimeLimit",
    "PlugStackConfig",
    "PluginDir",
    "PowerParameters",
    "PowerPlugin",
    "PreemptExemptTime",
    "PreemptMode",
    "PreemptParameters",
    "PreemptType",
    "PrEpParameters",
    "PrEpPlugins",
    "PriorityCalcPeriod",
    "PriorityDecayHalfLife",
    "PriorityFavorSmall",
    "PriorityFlags",
    "PriorityMaxAge",
    "PriorityParameters",
    "PrioritySiteFactorParameters",
    "PrioritySiteFactorPlugin",
    "PriorityType",
    "PriorityUsageResetPeriod",
    "PriorityWeightAge",
    "PriorityWeightAssoc",
    "PriorityWeightFairshare",
    "PriorityWeightJobSize",
    "PriorityWeightPartition",
    "PriorityWeightQOS",
    "PriorityWeightTRES",
    "PrivateData",
    "ProctrackType",
    "Prolog",
    "PrologEpilogTimeout",
    "PrologFlags",
    "PrologSlurmctld",
    "PrologTimeout",
    "PropagatePrioProcess",
    "PropagateResourceLimits",
    "PropagateResourceLimitsExcept",
    "RebootProgram",
    "ReconfigFlags",
    "RequeueExit",
    "RequeueExitHold",
    "ResumeFailProgram",
    "ResumeProgram",
    "ResumeRate",
    "ResumeTimeout",
    "ResvEpilog",
    "ResvOverRun",
    "ResvProlog",
    "ReturnToService",
    "RoutePlugin",
    "SchedulerParameters",
    "SchedulerTimeSlice",
    "SchedulerType",
    "ScronParameters",
    "SelectType",
    "SelectTypeParameters",
    "SlurmctldAddr",
    "SlurmctldDebug",
    "SlurmctldHost",
    "SlurmctldLogFile",
    "SlurmctldParameters",
    "SlurmctldPidFile",
    "SlurmctldPlugstack",
    "SlurmctldPort",
    "SlurmctldPrimaryOffProg",
    "SlurmctldPrimaryOnProg",
    "SlurmctldSyslogDebug",
    "SlurmctldTimeout",
    "SlurmdDebug",
    "SlurmdLogFile",
    "SlurmdParameters",
    "SlurmdPidFile",
    "SlurmdPort",
    "SlurmdSpoolDir",
    "SlurmdSyslogDebug",
    "SlurmdTimeout",
    "SlurmdUser",
    "SlurmSchedLogFile",
    "SlurmSchedLogLevel",
    "SlurmUser",
    "SrunEpilog",
    "SrunPortRange",
    "SrunProlog",
    "StateSaveLocation",
    "SuspendExcNodes",
    "SuspendExcParts",
    "SuspendExcStates",
    "SuspendProgram",
    "SuspendRate",
    "SuspendTime",
    "SuspendTimeout",
    "SwitchParameters",
    "SwitchType",
    "TaskEpilog",
    "TaskPlugin",
    "TaskPluginParam",
    "TaskProlog",
    "TCPTimeout",
    "TLSParameters",
    "TLSType",
    "TmpFS",
    "TopologyParam",
    "TopologyPlugin",
    "TrackWCKey",
    "TreeWidth",
    "UnkillableStepProgram",
    "UnkillableStepTimeout",
    "UrlParserType",
    "UsePAM",
    "VSizeFactor",
    "WaitTime",
    "X11Parameters",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn no_include(p: &str, _: &str) -> Result<(String, String), String> {
        Err(format!("{p}: not in this test"))
    }

    fn conf(text: &str) -> Result<SlurmConf, ParseError> {
        parse(Dialect::SlurmConf, "slurm.conf", text, &mut no_include)
    }

    #[test]
    fn keys_are_case_insensitive_comments_and_continuations_are_slurms() {
        let c = conf(
            "# the seed's settings\n\
             selecttype=select/cons_tres   # trailing comment\n\
             TaskPlugin=task/affinity,\\\ntask/cgroup\n\
             ClusterName=a\\#b\n\
             NodeName=DEFAULT RealMemory=1000 MemSpecLimit=10\n\
             NodeName=axon[001-003] CpuSpecList=1,3 \\\n   MemSpecLimit=20\n\
             PartitionName=batch Nodes=axon[001-003] Default=YES\n",
        )
        .unwrap();
        assert_eq!(c.get("SelectType").unwrap().value, "select/cons_tres");
        assert_eq!(
            c.get("TASKPLUGIN").unwrap().value,
            "task/affinity,task/cgroup"
        );
        assert_eq!(c.get("ClusterName").unwrap().value, "a#b");
        let n = c.node("axon002.example.com").unwrap();
        assert_eq!(n.at.line, 7);
        assert_eq!(n.get("cpuspeclist").unwrap().value, "1,3");
        assert_eq!(n.get("MemSpecLimit").unwrap().value, "20");
        assert_eq!(n.get("RealMemory").unwrap().value, "1000", "from DEFAULT");
        assert!(c.node("axon004").is_none());
    }

    #[test]
    fn bad_input_names_the_file_and_line() {
        let e = conf("ClusterName=x\nCpuSpecLst=1\n").unwrap_err();
        assert_eq!(e.at.line, 2);
        assert!(
            e.to_string()
                .starts_with("slurm.conf:2: unknown key `CpuSpecLst`"),
            "{e}"
        );
        let e = conf("NodeName=a CpuSpecLst=1\n").unwrap_err();
        assert!(e.to_string().contains("NodeName line"), "{e}");
        let e = conf("ClusterName=x\n\x7fELF\x02\x01\x01\0\0").unwrap_err();
        assert!(
            e.to_string().starts_with("slurm.conf:2: binary data"),
            "{e}"
        );
        let e = conf("just words\n").unwrap_err();
        assert!(e.what.contains("expected Key=Value"), "{e}");
        let e = conf("NodeName=a[1-2000000]\n").unwrap_err();
        assert!(e.to_string().contains("more than"), "{e}");
        let e = conf("Include extra.conf\n").unwrap_err();
        assert!(
            e.to_string().contains("slurm.conf:1: `Include extra.conf`"),
            "{e}"
        );
    }

    #[test]
    fn includes_nest_and_a_loop_stops() {
        let mut read = |p: &str, _: &str| -> Result<(String, String), String> {
            match p {
                "nodes.conf" => Ok((
                    "/etc/slurm/nodes.conf".into(),
                    "NodeName=n1 CpuSpecList=3\n".into(),
                )),
                "loop.conf" => Ok(("/etc/slurm/loop.conf".into(), "include loop.conf\n".into())),
                _ => Err("no such file".into()),
            }
        };
        let c = parse(
            Dialect::SlurmConf,
            "/etc/slurm/slurm.conf",
            "Include nodes.conf\n",
            &mut read,
        )
        .unwrap();
        assert_eq!(
            c.node("n1").unwrap().at.to_string(),
            "/etc/slurm/nodes.conf:1"
        );
        let e = parse(
            Dialect::SlurmConf,
            "/etc/slurm/slurm.conf",
            "Include loop.conf\n",
            &mut read,
        )
        .unwrap_err();
        assert!(e.what.contains("nested more than"), "{e}");
    }

    #[test]
    fn cgroup_conf_has_its_own_keys() {
        let c = parse(
            Dialect::CgroupConf,
            "cgroup.conf",
            "ConstrainCores=yes\nconstrainramspace=no\n",
            &mut no_include,
        )
        .unwrap();
        assert_eq!(c.get("ConstrainRAMSpace").unwrap().value, "no");
        assert!(
            parse(
                Dialect::CgroupConf,
                "cgroup.conf",
                "SelectType=x\n",
                &mut no_include
            )
            .is_err()
        );
    }
}
