//! The process's open-file limit against what the HTTP server may hold open. Every connection is
//! a file descriptor; a `max_connections` above the limit would let the accept loop run out of
//! descriptors under load, and with it sled and the Kafka clients, which need descriptors too.
//! At start the soft limit is raised as far as the hard limit allows; a setting the process
//! still cannot honour is refused with the two ways out.

/// Descriptors kept for everything but HTTP connections: sled's files, the Kafka clients'
/// sockets (a few per broker for each of three clients), the listener, logs and the runtime.
pub const RESERVED_FILES: u64 = 256;

/// Why the node cannot hold `http.max_connections` connections.
#[derive(Debug, thiserror::Error)]
pub enum OpenFilesError {
    /// The limit could not be read or raised.
    #[error("reading or raising the open-file limit (RLIMIT_NOFILE): {0}")]
    System(#[source] std::io::Error),
    /// The hard limit is below what the setting needs.
    #[error(
        "http.max_connections = {max_connections} needs {needed} open files ({RESERVED_FILES} more for sled and Kafka), \
         but this process may open at most {hard}: set http.max_connections to {fits} or less, or raise the hard \
         limit (LimitNOFILE= in the systemd unit, `ulimit -Hn` in the shell that starts the node)"
    )]
    TooLow {
        /// The setting.
        max_connections: usize,
        /// Descriptors it needs.
        needed: u64,
        /// The process's hard limit.
        hard: u64,
        /// The largest setting the hard limit allows.
        fits: u64,
    },
}

/// Makes sure the process may open enough files for `max_connections` connections, raising the
/// soft limit up to the hard one if needed; returns the soft limit in force.
pub fn ensure_for(max_connections: usize) -> Result<u64, OpenFilesError> {
    let needed = max_connections as u64 + RESERVED_FILES;
    let (soft, hard) = limits()?;
    if soft >= needed {
        return Ok(soft);
    }
    if hard < needed {
        let fits = hard.saturating_sub(RESERVED_FILES);
        return Err(OpenFilesError::TooLow { max_connections, needed, hard, fits });
    }
    set_soft(needed, hard)?;
    Ok(needed)
}

/// The soft and hard limits on open files (`u64::MAX` for unlimited).
fn limits() -> Result<(u64, u64), OpenFilesError> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes the struct it is given and reads nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(OpenFilesError::System(std::io::Error::last_os_error()));
    }
    Ok((limit.rlim_cur, limit.rlim_max))
}

fn set_soft(soft: u64, hard: u64) -> Result<(), OpenFilesError> {
    let limit = libc::rlimit { rlim_cur: soft, rlim_max: hard };
    // SAFETY: setrlimit only reads the struct it is given.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(OpenFilesError::System(std::io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setting_within_the_hard_limit_is_granted_and_one_beyond_is_refused_with_what_fits() {
        let (_, hard) = limits().unwrap();
        let granted = ensure_for(100).unwrap();
        assert!(granted >= 100 + RESERVED_FILES);
        if hard == libc::RLIM_INFINITY || hard > usize::MAX as u64 {
            return;
        }
        let too_many = (hard - RESERVED_FILES + 1) as usize;
        let err = ensure_for(too_many).unwrap_err();
        assert!(matches!(err, OpenFilesError::TooLow { fits, .. } if fits == hard - RESERVED_FILES), "{err}");
        assert!(err.to_string().contains("LimitNOFILE="), "{err}");
    }
}
