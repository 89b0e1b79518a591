//! Deployment artefacts made from core plans: slurm.conf and cgroup.conf settings, an
//! install script, the system files, the Kubernetes resources and kubelet settings. Pure:
//! plans and topologies in, file texts out; `axon plan` prints them or writes them under
//! `--out`.

pub mod files;
pub mod k8s;
pub mod script;
pub mod slurm;

use crate::model::net::Network;
use crate::model::plan::NodePlan;
use crate::model::topology::Topology;

/// One node's plan with what the artefacts need besides it.
#[derive(Debug, Clone, Copy)]
pub struct PlannedNode<'a> {
    pub name: &'a str,
    pub topology: &'a Topology,
    pub plan: &'a NodePlan,
    /// Its network facts (addresses for routing and the install script), when known.
    pub network: Option<&'a Network>,
}

/// A file to write: its name (relative) and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artefact {
    pub name: String,
    /// Where it goes on a node or controller, to say so in the output.
    pub install_to: String,
    pub text: String,
}

/// The plans' warnings and the rules they cannot hold, one `# …` comment line each, for
/// the head of an artefact: whoever installs it reads why it is what it is.
pub fn note_comments(nodes: &[PlannedNode]) -> String {
    use crate::model::plan::NoteSeverity;
    use std::fmt::Write as _;
    let mut s = String::new();
    for n in nodes {
        for note in n
            .plan
            .notes
            .iter()
            .filter(|x| x.severity >= NoteSeverity::Warning)
        {
            let what = if note.severity == NoteSeverity::Infeasible {
                "CANNOT HOLD on"
            } else {
                "WARNING on"
            };
            let _ = writeln!(s, "# {what} {}: {}", n.name, note.text);
        }
    }
    s
}
