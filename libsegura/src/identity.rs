//! Who is who: a user's uid, home, shell and primary group (getpwnam_r / getgrgid_r), and the
//! host name.

use std::path::PathBuf;

use nix::unistd::{Gid, Group, Uid, User};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("no such user: {0}")]
    NoSuchUser(String),
    #[error("no user with uid {0}")]
    NoSuchUid(u32),
    #[error("looking up {what}: {source}")]
    Lookup { what: String, source: nix::Error },
}

/// A local user as the policy sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// Name of the primary group; the numeric gid when the group has no entry.
    pub group: String,
    pub home: PathBuf,
    pub shell: PathBuf,
}

impl UserInfo {
    fn from_user(u: User) -> Result<UserInfo, IdentityError> {
        let group = group_name(u.gid.as_raw())?;
        Ok(UserInfo {
            name: u.name,
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
            group,
            home: u.dir,
            shell: u.shell,
        })
    }
}

/// Looks a user up by name.
pub fn user_by_name(name: &str) -> Result<UserInfo, IdentityError> {
    match User::from_name(name) {
        Ok(Some(u)) => UserInfo::from_user(u),
        Ok(None) => Err(IdentityError::NoSuchUser(name.to_string())),
        Err(source) => Err(IdentityError::Lookup {
            what: format!("user {name}"),
            source,
        }),
    }
}

/// Looks a user up by uid.
pub fn user_by_uid(uid: u32) -> Result<UserInfo, IdentityError> {
    match User::from_uid(Uid::from_raw(uid)) {
        Ok(Some(u)) => UserInfo::from_user(u),
        Ok(None) => Err(IdentityError::NoSuchUid(uid)),
        Err(source) => Err(IdentityError::Lookup {
            what: format!("uid {uid}"),
            source,
        }),
    }
}

/// The user running this process (real uid).
pub fn current_user() -> Result<UserInfo, IdentityError> {
    user_by_uid(Uid::current().as_raw())
}

/// The name of group `gid`, or the number itself when the group has no entry.
pub fn group_name(gid: u32) -> Result<String, IdentityError> {
    match Group::from_gid(Gid::from_raw(gid)) {
        Ok(Some(g)) => Ok(g.name),
        Ok(None) => Ok(gid.to_string()),
        Err(source) => Err(IdentityError::Lookup {
            what: format!("gid {gid}"),
            source,
        }),
    }
}

/// The gid of a group by name.
pub fn group_gid(name: &str) -> Result<Option<u32>, IdentityError> {
    match Group::from_name(name) {
        Ok(g) => Ok(g.map(|g| g.gid.as_raw())),
        Err(source) => Err(IdentityError::Lookup {
            what: format!("group {name}"),
            source,
        }),
    }
}

/// This machine's host name (as `hostname` prints it).
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_uid_zero_with_primary_group_root() {
        let root = user_by_name("root").unwrap();
        assert_eq!((root.uid, root.gid), (0, 0));
        assert_eq!(root.group, "root");
        assert_eq!(user_by_uid(0).unwrap(), root);
    }

    #[test]
    fn unknown_user_is_an_error() {
        let err = user_by_name("no-such-user-segura-test").unwrap_err();
        assert!(matches!(err, IdentityError::NoSuchUser(_)));
    }

    #[test]
    fn hostname_is_not_empty() {
        assert!(!hostname().is_empty());
    }
}
