//! Giving up privilege once the interface and the `--write-pcap` file are open: `--user NAME`
//! takes that user's uid, gid and groups, and a process that is not root afterwards clears
//! every capability it holds (root's, or the ambient ones systemd granted), so nothing that
//! parses packets can open another raw socket.

use std::ffi::{CStr, CString};

/// Switches to `user` (needs root) and clears capabilities; with no user, only clears them
/// when the process is not root.
pub fn drop_privileges(user: Option<&str>) -> Result<(), String> {
    if let Some(name) = user {
        switch_user(name)?;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        clear_capabilities()?;
    }
    Ok(())
}

fn switch_user(name: &str) -> Result<(), String> {
    let cname = CString::new(name).map_err(|_| format!("--user {name:?}: not a user name"))?;
    let (uid, gid) = lookup(&cname).ok_or_else(|| format!("--user {name}: no such user"))?;
    // SAFETY: plain system calls on integers and a valid C string.
    unsafe {
        if libc::geteuid() != 0 {
            if libc::geteuid() == uid {
                return Ok(());
            }
            return Err(format!(
                "--user {name}: switching user needs root; start as root, or run as {name} with the capabilities (see dist/spamtap.service)"
            ));
        }
        if libc::initgroups(cname.as_ptr(), gid) != 0 {
            return Err(format!(
                "--user {name}: setgroups: {}",
                std::io::Error::last_os_error()
            ));
        }
        if libc::setgid(gid) != 0 {
            return Err(format!(
                "--user {name}: setgid: {}",
                std::io::Error::last_os_error()
            ));
        }
        if libc::setuid(uid) != 0 {
            return Err(format!(
                "--user {name}: setuid: {}",
                std::io::Error::last_os_error()
            ));
        }
        // Root must be gone for good.
        if uid != 0 && libc::setuid(0) == 0 {
            return Err(format!(
                "--user {name}: root could be regained after setuid"
            ));
        }
    }
    Ok(())
}

fn lookup(name: &CStr) -> Option<(libc::uid_t, libc::gid_t)> {
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: passwd is plain data; getpwnam_r writes into it and into buf (of the given
    // length) and sets result to null or to &pwd.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwnam_r(
            name.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        );
        if rc != 0 || result.is_null() {
            return None;
        }
        Some((pwd.pw_uid, pwd.pw_gid))
    }
}

/// capset(2) with every set empty, and the ambient set cleared.
fn clear_capabilities() -> Result<(), String> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let data = [Data {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: prctl with integer arguments; capset reads one header and two data structs of
    // the layout the kernel defines for version 3.
    let rc = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        );
        libc::syscall(libc::SYS_capset, &header, data.as_ptr())
    };
    if rc != 0 {
        return Err(format!(
            "cannot drop capabilities: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}
