//! The lock that makes a SQLite inbox's workers one process's: an exclusive advisory
//! lock (`flock`) on a file beside the database, held as long as the workers run. The
//! operating system drops it when its holder exits, however it exits, so a crashed
//! process never blocks the next one. The file holds the lease-token prefix of the
//! process that holds (or last held) the lock: the next holder knows that the events
//! still running under that prefix belong to a process that is gone. A leaf module.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

/// The lock file of the SQLite database at `database`: `<database>-lock`.
pub(crate) fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push("-lock");
    PathBuf::from(name)
}

/// A held lock; dropping it (or the process ending) gives it back.
#[derive(Debug)]
pub(crate) struct WorkerLock {
    /// Kept open: the lock lives as long as this file description.
    _file: File,
}

/// What trying the lock found.
#[derive(Debug)]
pub(crate) enum Attempt {
    /// The lock is ours, and this is the lease-token prefix of its previous holder
    /// (`None` the first time, or if the file was unreadable).
    Held {
        lock: WorkerLock,
        previous: Option<String>,
    },
    /// Another process (or another set of workers of this process) holds it.
    Busy,
}

/// Takes the lock at `path` without waiting, and writes `prefix` (this process's
/// lease-token prefix) into it.
pub(crate) fn try_lock(path: &Path, prefix: &str) -> std::io::Result<Attempt> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(Attempt::Busy),
        Err(TryLockError::Error(error)) => return Err(error),
    }
    let mut previous = String::new();
    let previous = match file.read_to_string(&mut previous) {
        Ok(_) => Some(previous.trim().to_owned()).filter(|prefix| is_prefix(prefix)),
        Err(_) => None,
    };
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(prefix.as_bytes())?;
    Ok(Attempt::Held {
        lock: WorkerLock { _file: file },
        previous,
    })
}

/// Whether `text` looks like a lease-token prefix (16 hexadecimal digits).
fn is_prefix(text: &str) -> bool {
    text.len() == 16 && text.bytes().all(|byte| byte.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_the_next_learns_the_previous() {
        let folder = std::env::temp_dir().join(format!(
            "suno-lock-test-{}",
            crate::store::ClaimToken::new_unique()
        ));
        std::fs::create_dir_all(&folder).expect("folder");
        let path = lock_path(&folder.join("inbox.db"));
        assert!(path.ends_with("inbox.db-lock"));
        let Attempt::Held { lock, previous } = try_lock(&path, "00000000000000aa").expect("lock")
        else {
            panic!("the first try holds the lock");
        };
        assert_eq!(previous, None);
        assert!(matches!(
            try_lock(&path, "00000000000000bb").expect("lock"),
            Attempt::Busy
        ));
        drop(lock);
        let Attempt::Held { previous, .. } = try_lock(&path, "00000000000000bb").expect("lock")
        else {
            panic!("free again once dropped");
        };
        assert_eq!(previous.as_deref(), Some("00000000000000aa"));
        let _ = std::fs::remove_dir_all(&folder);
    }
}
