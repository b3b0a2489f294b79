//! The fields a condition or an output may name: Falco's names and types
//! (libs userspace/libsinsp/sinsp_filtercheck_{event,thread,fd,user,group}.cpp
//! `fields[]`), restricted to what Kestrel's records and tables can answer
//! exactly. A field Falco has and Kestrel cannot answer is listed in
//! `UNAVAILABLE` with the reason, so a rule using it is skipped and says why
//! instead of being evaluated wrong.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    Str,
    /// Every integer type (Falco's INT64, UINT32, PID, PORT, ...).
    Int,
    Bool,
    /// PT_IPADDR: compared as an address.
    Ip,
    /// PT_IPNET filter-only fields: compared against a CIDR.
    Net,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    EvtType,
    EvtDir,
    EvtNum,
    EvtRes,
    EvtRawres,
    EvtTime,
    EvtTimeIso,
    EvtIsOpenRead,
    EvtIsOpenWrite,
    EvtIsOpenExec,
    EvtArgFlags,
    EvtArgRequest,
    EvtArgDomain,
    EvtArgPid,
    EvtArgFd,
    EvtArgTarget,
    EvtArgLinkpath,
    EvtArgOldpath,
    EvtArgNewpath,
    EvtArgPath,
    EvtArgName,
    EvtArgUid,
    ProcName,
    ProcExe,
    ProcExepath,
    ProcArgs,
    ProcCmdline,
    ProcPid,
    ProcPpid,
    ProcSid,
    ProcPname,
    ProcPexe,
    ProcPexepath,
    ProcPcmdline,
    ProcAname,
    ProcAexepath,
    ProcTty,
    ProcCwd,
    ProcSname,
    ProcDuration,
    ProcIsExeFromMemfd,
    ThreadTid,
    UserUid,
    UserName,
    UserLoginuid,
    UserLoginname,
    GroupGid,
    GroupName,
    FdNum,
    FdName,
    FdNameraw,
    FdDirectory,
    FdFilename,
    FdType,
    FdTypechar,
    FdL4proto,
    FdSip,
    FdRip,
    FdCip,
    FdLip,
    FdSport,
    FdRport,
    FdCport,
    FdLport,
    FdConnected,
    FdNameChanged,
    FdIp,
    FdNet,
    FdSnet,
    FdCnet,
    ContainerId,
    ContainerName,
    ContainerImageRepository,
    ContainerStartTs,
}

/// Whether the field takes `[arg]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg {
    None,
    /// A number; absent means the field's no-argument form.
    Index,
}

pub struct FieldInfo {
    pub name: &'static str,
    pub field: Field,
    pub ty: Ty,
    pub arg: Arg,
}

macro_rules! fields {
    ($( $name:literal => $f:ident, $ty:ident, $arg:ident; )*) => {
        pub const FIELDS: &[FieldInfo] = &[
            $( FieldInfo { name: $name, field: Field::$f, ty: Ty::$ty, arg: Arg::$arg }, )*
        ];
    };
}

fields! {
    "evt.type" => EvtType, Str, None;
    "evt.dir" => EvtDir, Str, None;
    "evt.num" => EvtNum, Int, None;
    "evt.res" => EvtRes, Str, None;
    "evt.rawres" => EvtRawres, Int, None;
    "evt.time" => EvtTime, Int, None;
    "evt.time.iso8601" => EvtTimeIso, Str, None;
    "evt.is_open_read" => EvtIsOpenRead, Bool, None;
    "evt.is_open_write" => EvtIsOpenWrite, Bool, None;
    "evt.is_open_exec" => EvtIsOpenExec, Bool, None;
    "evt.arg.flags" => EvtArgFlags, Str, None;
    "evt.arg.request" => EvtArgRequest, Str, None;
    "evt.arg.domain" => EvtArgDomain, Str, None;
    "evt.arg.pid" => EvtArgPid, Int, None;
    "evt.arg.fd" => EvtArgFd, Int, None;
    "evt.arg.target" => EvtArgTarget, Str, None;
    "evt.arg.linkpath" => EvtArgLinkpath, Str, None;
    "evt.arg.oldpath" => EvtArgOldpath, Str, None;
    "evt.arg.newpath" => EvtArgNewpath, Str, None;
    "evt.arg.path" => EvtArgPath, Str, None;
    "evt.arg.name" => EvtArgName, Str, None;
    "evt.arg.uid" => EvtArgUid, Int, None;
    "proc.name" => ProcName, Str, None;
    "proc.exe" => ProcExe, Str, None;
    "proc.exepath" => ProcExepath, Str, None;
    "proc.args" => ProcArgs, Str, Index;
    "proc.cmdline" => ProcCmdline, Str, None;
    "proc.pid" => ProcPid, Int, None;
    "proc.vpid" => ProcPid, Int, None;
    "proc.ppid" => ProcPpid, Int, None;
    "proc.sid" => ProcSid, Int, None;
    "proc.pname" => ProcPname, Str, None;
    "proc.pexe" => ProcPexe, Str, None;
    "proc.pexepath" => ProcPexepath, Str, None;
    "proc.pcmdline" => ProcPcmdline, Str, None;
    "proc.aname" => ProcAname, Str, Index;
    "proc.aexepath" => ProcAexepath, Str, Index;
    "proc.tty" => ProcTty, Int, None;
    "proc.cwd" => ProcCwd, Str, None;
    "proc.sname" => ProcSname, Str, None;
    "proc.duration" => ProcDuration, Int, None;
    "proc.is_exe_from_memfd" => ProcIsExeFromMemfd, Bool, None;
    "thread.tid" => ThreadTid, Int, None;
    "thread.vtid" => ThreadTid, Int, None;
    "user.uid" => UserUid, Int, None;
    "user.name" => UserName, Str, None;
    "user.loginuid" => UserLoginuid, Int, None;
    "user.loginname" => UserLoginname, Str, None;
    "group.gid" => GroupGid, Int, None;
    "group.name" => GroupName, Str, None;
    "fd.num" => FdNum, Int, None;
    "fd.name" => FdName, Str, None;
    "fd.nameraw" => FdNameraw, Str, None;
    "fd.directory" => FdDirectory, Str, None;
    "fd.filename" => FdFilename, Str, None;
    "fd.type" => FdType, Str, None;
    "fd.typechar" => FdTypechar, Str, None;
    "fd.l4proto" => FdL4proto, Str, None;
    "fd.sip" => FdSip, Ip, None;
    "fd.rip" => FdRip, Ip, None;
    "fd.cip" => FdCip, Ip, None;
    "fd.lip" => FdLip, Ip, None;
    "fd.sport" => FdSport, Int, None;
    "fd.rport" => FdRport, Int, None;
    "fd.cport" => FdCport, Int, None;
    "fd.lport" => FdLport, Int, None;
    "fd.connected" => FdConnected, Bool, None;
    "fd.name_changed" => FdNameChanged, Bool, None;
    "fd.ip" => FdIp, Ip, None;
    "fd.net" => FdNet, Net, None;
    "fd.snet" => FdSnet, Net, None;
    "fd.cnet" => FdCnet, Net, None;
    "container.id" => ContainerId, Str, None;
    "container.name" => ContainerName, Str, None;
    "container.image.repository" => ContainerImageRepository, Str, None;
    "container.start_ts" => ContainerStartTs, Int, None;
}

/// Falco fields Kestrel knows by name but cannot answer, and why: a rule
/// naming one is skipped (never evaluated with a made-up value).
pub const UNAVAILABLE: &[(&str, &str)] = &[
    (
        "container.privileged",
        "needs a container runtime's metadata",
    ),
    (
        "container.image.tag",
        "needs a container runtime's metadata",
    ),
    ("container.image", "needs a container runtime's metadata"),
    ("k8s.ns.name", "needs a container runtime's metadata"),
    ("k8s.pod.name", "needs a container runtime's metadata"),
    ("fd.sip.name", "needs background DNS resolution"),
    ("thread.cap_effective", "capabilities are not captured"),
    ("thread.cap_permitted", "capabilities are not captured"),
    (
        "proc.is_exe_upper_layer",
        "overlayfs layers are not captured",
    ),
    ("proc.exe_ino.ctime", "exe inode times are not captured"),
    ("proc.exe_ino.mtime", "exe inode times are not captured"),
    (
        "proc.exe_ino.ctime_duration_proc_start",
        "exe inode times are not captured",
    ),
    ("evt.args", "the full argument list is not captured"),
];

pub fn lookup(name: &str) -> Option<&'static FieldInfo> {
    FIELDS.iter().find(|f| f.name == name)
}

pub fn unavailable(name: &str) -> Option<&'static str> {
    if let Some((_, why)) = UNAVAILABLE.iter().find(|(n, _)| *n == name) {
        return Some(why);
    }
    // Other container/k8s metadata fields share the reason.
    ["container.", "k8s.", "k8smeta."]
        .iter()
        .any(|p| name.starts_with(p))
        .then_some("needs a container runtime's metadata")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_dotted() {
        for (i, f) in FIELDS.iter().enumerate() {
            assert!(f.name.contains('.'), "{}", f.name);
            assert!(
                FIELDS[i + 1..].iter().all(|g| g.name != f.name),
                "{} twice",
                f.name
            );
            assert!(unavailable(f.name).is_none() || f.name.starts_with("container."));
        }
    }
}
