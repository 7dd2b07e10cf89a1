//! The router: an immutable snapshot of every mount, swapped whole when the table changes, so a
//! request finds its mount without taking a lock.

use std::collections::HashMap;
use std::sync::Arc;

use coffer_sdk::{Backend, SpecialPaths};

use super::MountEntry;
use crate::view::BarrierView;

/// Who serves a mount: the core itself (`sys/`, `auth/token/`) or a mounted backend.
#[derive(Clone)]
pub enum Target {
    System,
    Token,
    Identity,
    Backend(Arc<dyn Backend>),
}

/// One mounted path, ready to serve.
pub struct Route {
    pub entry: Arc<MountEntry>,
    /// The full request-path prefix, e.g. `secret/`.
    pub path: String,
    pub target: Target,
    pub view: Arc<BarrierView>,
    pub options: Arc<std::collections::BTreeMap<String, String>>,
    pub special: SpecialPaths,
}

impl Route {
    /// Whether `rel` (a path relative to this mount) may be served without a token.
    pub fn is_unauthenticated(&self, rel: &str) -> bool {
        self.special
            .unauthenticated
            .iter()
            .any(|pattern| matches_pattern(pattern, rel))
    }

    /// Whether `rel` needs `sudo`.
    pub fn is_root_path(&self, rel: &str) -> bool {
        self.special
            .root
            .iter()
            .any(|pattern| matches_pattern(pattern, rel))
    }
}

/// Every mount, by full path.
#[derive(Default, Clone)]
pub struct RouteTable {
    routes: HashMap<String, Arc<Route>>,
}

impl RouteTable {
    pub fn insert(&mut self, route: Route) {
        self.routes.insert(route.path.clone(), Arc::new(route));
    }

    pub fn remove(&mut self, path: &str) -> Option<Arc<Route>> {
        self.routes.remove(path)
    }

    pub fn get(&self, mount_path: &str) -> Option<&Arc<Route>> {
        self.routes.get(mount_path)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Route>> {
        self.routes.values()
    }

    /// The mount with the longest prefix of `path`, and `path` relative to it. As Vault does,
    /// `secret` also finds the mount `secret/`.
    pub fn find<'p>(&self, path: &'p str) -> Option<(&Arc<Route>, &'p str)> {
        let mut end = path.len();
        loop {
            let candidate = &path[..end];
            if candidate.ends_with('/') {
                if let Some(route) = self.routes.get(candidate) {
                    return Some((route, &path[end..]));
                }
            }
            end = match path[..end.saturating_sub(1)].rfind('/') {
                Some(i) => i + 1,
                None => break,
            };
        }
        if !path.ends_with('/') {
            let with_slash = format!("{path}/");
            if let Some(route) = self.routes.get(&with_slash) {
                return Some((route, ""));
            }
        }
        None
    }

    /// Whether a new mount at `path` would overlap an existing one (equal, above or below).
    pub fn conflict(&self, path: &str) -> Option<&str> {
        self.routes
            .keys()
            .find(|existing| existing.starts_with(path) || path.starts_with(existing.as_str()))
            .map(String::as_str)
    }
}

/// A special-path pattern: exact, or a prefix when it ends in `*`.
fn matches_pattern(pattern: &str, path: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => pattern == path,
    }
}
