//! Identity: entities (who someone is, across auth methods), aliases (how an auth method knows
//! them: created on login per auth mount) and internal groups whose policies apply to their
//! member entities from their next request.
//!
//! Each entity, alias and group is its own barrier entry; name and alias indexes point to ids.
//! The policies an entity gets from itself and its groups are cached per entity and dropped on
//! any identity change, so the per-request ACL check never scans groups.

mod paths;

pub use paths::handle;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, SecondsFormat, Utc};
use coffer_sdk::Error;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::barrier::Barrier;

const ENTITY: &str = "sys/identity/entity/";
const ENTITY_NAME: &str = "sys/identity/entity-name/";
const ALIAS: &str = "sys/identity/alias/";
const ALIAS_INDEX: &str = "sys/identity/alias-index/";
const GROUP: &str = "sys/identity/group/";
const GROUP_NAME: &str = "sys/identity/group-name/";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entity {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub policies: Vec<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub disabled: bool,
    pub creation_time: DateTime<Utc>,
    pub last_update_time: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Alias {
    pub id: String,
    pub canonical_id: String,
    pub mount_accessor: String,
    pub mount_type: String,
    pub name: String,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    pub creation_time: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Group {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub policies: Vec<String>,
    #[serde(default)]
    pub member_entity_ids: Vec<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    pub creation_time: DateTime<Utc>,
    pub last_update_time: DateTime<Utc>,
}

/// What an entity contributes to a request: its own and its groups' policies.
#[derive(Debug, Default)]
pub struct EntityGrant {
    pub disabled: bool,
    pub policies: Vec<String>,
}

/// Entities, aliases and groups on the barrier.
pub struct IdentityStore {
    barrier: Arc<Barrier>,
    grants: RwLock<HashMap<String, Arc<EntityGrant>>>,
    /// Serialises writes so that name indexes stay unique.
    writes: tokio::sync::Mutex<()>,
}

impl IdentityStore {
    pub fn new(barrier: Arc<Barrier>) -> Self {
        IdentityStore {
            barrier,
            grants: RwLock::new(HashMap::new()),
            writes: tokio::sync::Mutex::new(()),
        }
    }

    /// The policies an entity grants on top of its token's (cached).
    pub async fn grant(&self, entity_id: &str) -> Result<Arc<EntityGrant>, Error> {
        if let Some(grant) = self
            .grants
            .read()
            .expect("identity cache lock")
            .get(entity_id)
        {
            return Ok(grant.clone());
        }
        let grant = match self.entity(entity_id).await? {
            None => EntityGrant::default(),
            Some(entity) => {
                let mut policies = entity.policies.clone();
                for group in self.groups().await? {
                    if group.member_entity_ids.iter().any(|m| m == entity_id) {
                        policies.extend(group.policies);
                    }
                }
                policies.sort();
                policies.dedup();
                EntityGrant {
                    disabled: entity.disabled,
                    policies,
                }
            }
        };
        let grant = Arc::new(grant);
        self.grants
            .write()
            .expect("identity cache lock")
            .insert(entity_id.to_owned(), grant.clone());
        Ok(grant)
    }

    /// The entity an auth mount's alias belongs to, created with its alias on first login.
    pub async fn entity_for_login(
        &self,
        mount_accessor: &str,
        mount_type: &str,
        alias: &coffer_sdk::Alias,
    ) -> Result<String, Error> {
        let index = format!("{ALIAS_INDEX}{mount_accessor}/{}", hex::encode(&alias.name));
        if let Some(id) = self.barrier.get(&index).await? {
            if let Some(found) = self.alias(&String::from_utf8_lossy(&id)).await? {
                return Ok(found.canonical_id);
            }
        }
        let _serial = self.writes.lock().await;
        if let Some(id) = self.barrier.get(&index).await? {
            if let Some(found) = self.alias(&String::from_utf8_lossy(&id)).await? {
                return Ok(found.canonical_id);
            }
        }
        let now = Utc::now();
        let entity_id = uuid::Uuid::new_v4().to_string();
        let entity = Entity {
            name: format!("entity_{}", &entity_id[..8]),
            id: entity_id.clone(),
            policies: Vec::new(),
            metadata: BTreeMap::new(),
            disabled: false,
            creation_time: now,
            last_update_time: now,
        };
        let alias = Alias {
            id: uuid::Uuid::new_v4().to_string(),
            canonical_id: entity_id.clone(),
            mount_accessor: mount_accessor.to_owned(),
            mount_type: mount_type.to_owned(),
            name: alias.name.clone(),
            metadata: alias.metadata.clone(),
            creation_time: now,
        };
        self.write_entity_unlocked(&entity, None).await?;
        self.write_alias_unlocked(&alias).await?;
        Ok(entity_id)
    }

    pub async fn entity(&self, id: &str) -> Result<Option<Entity>, Error> {
        self.load(&format!("{ENTITY}{id}")).await
    }

    pub async fn entity_by_name(&self, name: &str) -> Result<Option<Entity>, Error> {
        match self
            .barrier
            .get(&format!("{ENTITY_NAME}{}", hex::encode(name)))
            .await?
        {
            Some(id) => self.entity(&String::from_utf8_lossy(&id)).await,
            None => Ok(None),
        }
    }

    pub async fn alias(&self, id: &str) -> Result<Option<Alias>, Error> {
        self.load(&format!("{ALIAS}{id}")).await
    }

    pub async fn group(&self, id: &str) -> Result<Option<Group>, Error> {
        self.load(&format!("{GROUP}{id}")).await
    }

    pub async fn group_by_name(&self, name: &str) -> Result<Option<Group>, Error> {
        match self
            .barrier
            .get(&format!("{GROUP_NAME}{}", hex::encode(name)))
            .await?
        {
            Some(id) => self.group(&String::from_utf8_lossy(&id)).await,
            None => Ok(None),
        }
    }

    pub async fn entity_ids(&self) -> Result<Vec<String>, Error> {
        Ok(self.barrier.list(ENTITY).await?)
    }

    pub async fn alias_ids(&self) -> Result<Vec<String>, Error> {
        Ok(self.barrier.list(ALIAS).await?)
    }

    pub async fn groups(&self) -> Result<Vec<Group>, Error> {
        let mut groups = Vec::new();
        for id in self.barrier.list(GROUP).await? {
            if let Some(group) = self.group(&id).await? {
                groups.push(group);
            }
        }
        Ok(groups)
    }

    /// The aliases of an entity.
    pub async fn aliases_of(&self, entity_id: &str) -> Result<Vec<Alias>, Error> {
        let mut out = Vec::new();
        for id in self.alias_ids().await? {
            if let Some(alias) = self.alias(&id).await? {
                if alias.canonical_id == entity_id {
                    out.push(alias);
                }
            }
        }
        Ok(out)
    }

    /// Stores an entity, keeping the name index unique.
    pub async fn write_entity(&self, entity: &Entity, old_name: Option<&str>) -> Result<(), Error> {
        let _serial = self.writes.lock().await;
        self.write_entity_unlocked(entity, old_name).await
    }

    pub async fn delete_entity(&self, entity: &Entity) -> Result<(), Error> {
        let _serial = self.writes.lock().await;
        for alias in self.aliases_of(&entity.id).await? {
            self.delete_alias_unlocked(&alias).await?;
        }
        self.barrier
            .delete(&format!("{ENTITY}{}", entity.id))
            .await?;
        self.barrier
            .delete(&format!("{ENTITY_NAME}{}", hex::encode(&entity.name)))
            .await?;
        self.invalidate();
        Ok(())
    }

    pub async fn write_alias(&self, alias: &Alias) -> Result<(), Error> {
        let _serial = self.writes.lock().await;
        let index = format!(
            "{ALIAS_INDEX}{}/{}",
            alias.mount_accessor,
            hex::encode(&alias.name)
        );
        if let Some(existing) = self.barrier.get(&index).await? {
            if String::from_utf8_lossy(&existing) != alias.id {
                return Err(Error::invalid(
                    "alias with combination of mount accessor and name already exists",
                ));
            }
        }
        self.write_alias_unlocked(alias).await
    }

    pub async fn delete_alias(&self, alias: &Alias) -> Result<(), Error> {
        let _serial = self.writes.lock().await;
        self.delete_alias_unlocked(alias).await
    }

    pub async fn write_group(&self, group: &Group, old_name: Option<&str>) -> Result<(), Error> {
        let _serial = self.writes.lock().await;
        let name_key = format!("{GROUP_NAME}{}", hex::encode(&group.name));
        if let Some(existing) = self.barrier.get(&name_key).await? {
            if String::from_utf8_lossy(&existing) != group.id {
                return Err(Error::invalid(format!(
                    "group name {:?} is already in use",
                    group.name
                )));
            }
        }
        let mut ops = vec![
            coffer_storage::Op::Put(format!("{GROUP}{}", group.id), to_json(group)?),
            coffer_storage::Op::Put(name_key, group.id.clone().into_bytes()),
        ];
        if let Some(old) = old_name.filter(|old| *old != group.name) {
            ops.push(coffer_storage::Op::Delete(format!(
                "{GROUP_NAME}{}",
                hex::encode(old)
            )));
        }
        self.barrier.apply(ops).await?;
        self.invalidate();
        Ok(())
    }

    pub async fn delete_group(&self, group: &Group) -> Result<(), Error> {
        let _serial = self.writes.lock().await;
        self.barrier
            .apply(vec![
                coffer_storage::Op::Delete(format!("{GROUP}{}", group.id)),
                coffer_storage::Op::Delete(format!("{GROUP_NAME}{}", hex::encode(&group.name))),
            ])
            .await?;
        self.invalidate();
        Ok(())
    }

    async fn write_entity_unlocked(
        &self,
        entity: &Entity,
        old_name: Option<&str>,
    ) -> Result<(), Error> {
        let name_key = format!("{ENTITY_NAME}{}", hex::encode(&entity.name));
        if let Some(existing) = self.barrier.get(&name_key).await? {
            if String::from_utf8_lossy(&existing) != entity.id {
                return Err(Error::invalid(format!(
                    "entity name {:?} is already in use",
                    entity.name
                )));
            }
        }
        let mut ops = vec![
            coffer_storage::Op::Put(format!("{ENTITY}{}", entity.id), to_json(entity)?),
            coffer_storage::Op::Put(name_key, entity.id.clone().into_bytes()),
        ];
        if let Some(old) = old_name.filter(|old| *old != entity.name) {
            ops.push(coffer_storage::Op::Delete(format!(
                "{ENTITY_NAME}{}",
                hex::encode(old)
            )));
        }
        self.barrier.apply(ops).await?;
        self.invalidate();
        Ok(())
    }

    async fn write_alias_unlocked(&self, alias: &Alias) -> Result<(), Error> {
        let index = format!(
            "{ALIAS_INDEX}{}/{}",
            alias.mount_accessor,
            hex::encode(&alias.name)
        );
        self.barrier
            .apply(vec![
                coffer_storage::Op::Put(format!("{ALIAS}{}", alias.id), to_json(alias)?),
                coffer_storage::Op::Put(index, alias.id.clone().into_bytes()),
            ])
            .await?;
        Ok(())
    }

    async fn delete_alias_unlocked(&self, alias: &Alias) -> Result<(), Error> {
        self.barrier
            .apply(vec![
                coffer_storage::Op::Delete(format!("{ALIAS}{}", alias.id)),
                coffer_storage::Op::Delete(format!(
                    "{ALIAS_INDEX}{}/{}",
                    alias.mount_accessor,
                    hex::encode(&alias.name)
                )),
            ])
            .await?;
        Ok(())
    }

    async fn load<T: for<'de> Deserialize<'de>>(&self, key: &str) -> Result<Option<T>, Error> {
        match self.barrier.get(key).await? {
            Some(bytes) => Ok(Some(
                serde_json::from_slice(&bytes).map_err(Error::internal)?,
            )),
            None => Ok(None),
        }
    }

    fn invalidate(&self) {
        self.grants.write().expect("identity cache lock").clear();
    }
}

fn to_json(value: &impl Serialize) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(Error::internal)
}

fn time(t: DateTime<Utc>) -> Value {
    json!(t.to_rfc3339_opts(SecondsFormat::Nanos, true))
}
