//! The `identity/` paths: entity, entity-alias and group CRUD by id and name, and lookups, with
//! OpenBao's fields.

use chrono::Utc;
use coffer_sdk::{Error, Operation, Request, Response};
use serde_json::{json, Value};

use super::{time, Alias, Entity, Group, IdentityStore};
use crate::core::Unsealed;
use crate::token::string_list;

/// Serves a request under `identity/`; `req.path` is relative to it.
pub async fn handle(state: &Unsealed, req: Request) -> Result<Option<Response>, Error> {
    let store = &state.identity;
    let op = req.operation;
    let write = matches!(op, Operation::Create | Operation::Update);
    let list = op == Operation::List || (op == Operation::Read && req.path.ends_with('/'));
    let path = req.path.trim_end_matches('/');
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["entity"] if write => {
            let existing = match req.get_str("id") {
                Some(id) => store.entity(id).await?,
                None => match req.get_str("name") {
                    Some(name) => store.entity_by_name(name).await?,
                    None => None,
                },
            };
            upsert_entity(store, existing, &req).await
        }
        ["entity", "id"] if list => list_keys(store.entity_ids().await?),
        ["entity", "name"] if list => {
            let mut names = Vec::new();
            for id in store.entity_ids().await? {
                if let Some(e) = store.entity(&id).await? {
                    names.push(e.name);
                }
            }
            names.sort();
            list_keys(names)
        }
        ["entity", by @ ("id" | "name"), key] => {
            let entity = if *by == "id" {
                store.entity(key).await?
            } else {
                store.entity_by_name(key).await?
            };
            match op {
                Operation::Read => match entity {
                    Some(e) => entity_response(store, &e).await.map(Some),
                    None => Ok(None),
                },
                Operation::Create | Operation::Update => {
                    if *by == "id" && entity.is_none() {
                        return Err(Error::invalid("entity not found"));
                    }
                    let mut req = req.clone();
                    if *by == "name" {
                        req.data.insert("name".into(), json!(key));
                    }
                    upsert_entity(store, entity, &req).await
                }
                Operation::Delete => {
                    if let Some(e) = entity {
                        store.delete_entity(&e).await?;
                    }
                    Ok(None)
                }
                _ => Err(Error::UnsupportedOperation),
            }
        }
        ["entity-alias"] if write => {
            let canonical_id = req
                .get_str("canonical_id")
                .ok_or_else(|| Error::invalid("missing canonical_id"))?;
            if store.entity(canonical_id).await?.is_none() {
                return Err(Error::invalid("invalid canonical_id"));
            }
            let mount_accessor = req
                .get_str("mount_accessor")
                .ok_or_else(|| Error::invalid("missing mount_accessor"))?;
            let mount_type = state
                .router
                .load()
                .iter()
                .find(|r| r.entry.accessor == mount_accessor)
                .map(|r| r.entry.mount_type.clone())
                .ok_or_else(|| Error::invalid("invalid mount accessor"))?;
            let alias = Alias {
                id: uuid::Uuid::new_v4().to_string(),
                canonical_id: canonical_id.to_owned(),
                mount_accessor: mount_accessor.to_owned(),
                mount_type,
                name: req
                    .get_str("name")
                    .filter(|n| !n.is_empty())
                    .ok_or_else(|| Error::invalid("missing alias name"))?
                    .to_owned(),
                metadata: string_map(req.data.get("custom_metadata"))?,
                creation_time: Utc::now(),
            };
            store.write_alias(&alias).await?;
            Ok(Some(data(
                json!({ "id": alias.id, "canonical_id": alias.canonical_id }),
            )))
        }
        ["entity-alias", "id"] if list => list_keys(store.alias_ids().await?),
        ["entity-alias", "id", id] => {
            let alias = store.alias(id).await?;
            match op {
                Operation::Read => Ok(alias.map(|a| data(alias_json(&a)))),
                Operation::Delete => {
                    if let Some(a) = alias {
                        store.delete_alias(&a).await?;
                    }
                    Ok(None)
                }
                _ => Err(Error::UnsupportedOperation),
            }
        }
        ["group"] if write => {
            let existing = match req.get_str("id") {
                Some(id) => store.group(id).await?,
                None => match req.get_str("name") {
                    Some(name) => store.group_by_name(name).await?,
                    None => None,
                },
            };
            upsert_group(store, existing, &req).await
        }
        ["group", "id"] if list => {
            list_keys(store.groups().await?.into_iter().map(|g| g.id).collect())
        }
        ["group", "name"] if list => {
            let mut names: Vec<String> =
                store.groups().await?.into_iter().map(|g| g.name).collect();
            names.sort();
            list_keys(names)
        }
        ["group", by @ ("id" | "name"), key] => {
            let group = if *by == "id" {
                store.group(key).await?
            } else {
                store.group_by_name(key).await?
            };
            match op {
                Operation::Read => Ok(group.map(|g| data(group_json(&g)))),
                Operation::Create | Operation::Update => {
                    let mut req = req.clone();
                    if *by == "name" {
                        req.data.insert("name".into(), json!(key));
                    } else if group.is_none() {
                        return Err(Error::invalid("group not found"));
                    }
                    upsert_group(store, group, &req).await
                }
                Operation::Delete => {
                    if let Some(g) = group {
                        store.delete_group(&g).await?;
                    }
                    Ok(None)
                }
                _ => Err(Error::UnsupportedOperation),
            }
        }
        ["lookup", "entity"] if write => {
            let entity = if let Some(id) = req.get_str("id") {
                store.entity(id).await?
            } else if let Some(name) = req.get_str("name") {
                store.entity_by_name(name).await?
            } else if let Some(alias_id) = req.get_str("alias_id") {
                match store.alias(alias_id).await? {
                    Some(a) => store.entity(&a.canonical_id).await?,
                    None => None,
                }
            } else if let (Some(name), Some(accessor)) = (
                req.get_str("alias_name"),
                req.get_str("alias_mount_accessor"),
            ) {
                let mut found = None;
                for id in store.alias_ids().await? {
                    if let Some(a) = store.alias(&id).await? {
                        if a.name == name && a.mount_accessor == accessor {
                            found = store.entity(&a.canonical_id).await?;
                            break;
                        }
                    }
                }
                found
            } else {
                return Err(Error::invalid("missing id, name, alias_id or alias_name"));
            };
            match entity {
                Some(e) => entity_response(store, &e).await.map(Some),
                None => Ok(None),
            }
        }
        ["lookup", "group"] if write => {
            let group = if let Some(id) = req.get_str("id") {
                store.group(id).await?
            } else if let Some(name) = req.get_str("name") {
                store.group_by_name(name).await?
            } else {
                return Err(Error::invalid("missing id or name"));
            };
            Ok(group.map(|g| data(group_json(&g))))
        }
        ["entity" | "entity-alias" | "group" | "lookup", ..] => Err(Error::UnsupportedOperation),
        _ => Err(Error::UnsupportedPath(format!("identity/{}", req.path))),
    }
}

async fn upsert_entity(
    store: &IdentityStore,
    existing: Option<Entity>,
    req: &Request,
) -> Result<Option<Response>, Error> {
    let now = Utc::now();
    let created = existing.is_none();
    let old_name = existing.as_ref().map(|e| e.name.clone());
    let mut entity = existing.unwrap_or_else(|| {
        let id = uuid::Uuid::new_v4().to_string();
        Entity {
            name: format!("entity_{}", &id[..8]),
            id,
            policies: Vec::new(),
            metadata: Default::default(),
            disabled: false,
            creation_time: now,
            last_update_time: now,
        }
    });
    if let Some(name) = req.get_str("name").filter(|n| !n.is_empty()) {
        entity.name = name.to_owned();
    }
    if req.data.contains_key("policies") {
        entity.policies = string_list(req.data.get("policies"))?;
    }
    if req.data.contains_key("metadata") {
        entity.metadata = string_map(req.data.get("metadata"))?;
    }
    if let Some(disabled) = req.data.get("disabled") {
        entity.disabled = disabled.as_bool().unwrap_or(entity.disabled);
    }
    entity.last_update_time = now;
    store.write_entity(&entity, old_name.as_deref()).await?;
    if created {
        Ok(Some(data(
            json!({ "id": entity.id, "name": entity.name, "aliases": null }),
        )))
    } else {
        Ok(None)
    }
}

async fn upsert_group(
    store: &IdentityStore,
    existing: Option<Group>,
    req: &Request,
) -> Result<Option<Response>, Error> {
    if let Some(kind) = req.get_str("type") {
        if kind != "internal" {
            return Err(Error::invalid("only internal groups are supported"));
        }
    }
    let now = Utc::now();
    let created = existing.is_none();
    let old_name = existing.as_ref().map(|g| g.name.clone());
    let mut group = existing.unwrap_or_else(|| {
        let id = uuid::Uuid::new_v4().to_string();
        Group {
            name: format!("group_{}", &id[..8]),
            id,
            policies: Vec::new(),
            member_entity_ids: Vec::new(),
            metadata: Default::default(),
            creation_time: now,
            last_update_time: now,
        }
    });
    if let Some(name) = req.get_str("name").filter(|n| !n.is_empty()) {
        group.name = name.to_owned();
    }
    if req.data.contains_key("policies") {
        group.policies = string_list(req.data.get("policies"))?;
    }
    if req.data.contains_key("member_entity_ids") {
        let ids = string_list(req.data.get("member_entity_ids"))?;
        for id in &ids {
            if store.entity(id).await?.is_none() {
                return Err(Error::invalid(format!("entity {id:?} does not exist")));
            }
        }
        group.member_entity_ids = ids;
    }
    if req.data.contains_key("metadata") {
        group.metadata = string_map(req.data.get("metadata"))?;
    }
    group.last_update_time = now;
    store.write_group(&group, old_name.as_deref()).await?;
    if created {
        Ok(Some(data(json!({ "id": group.id, "name": group.name }))))
    } else {
        Ok(None)
    }
}

async fn entity_response(store: &IdentityStore, entity: &Entity) -> Result<Response, Error> {
    let aliases: Vec<Value> = store
        .aliases_of(&entity.id)
        .await?
        .iter()
        .map(alias_json)
        .collect();
    let group_ids: Vec<String> = store
        .groups()
        .await?
        .into_iter()
        .filter(|g| g.member_entity_ids.contains(&entity.id))
        .map(|g| g.id)
        .collect();
    Ok(data(json!({
        "id": entity.id,
        "name": entity.name,
        "policies": entity.policies,
        "metadata": if entity.metadata.is_empty() { Value::Null } else { json!(entity.metadata) },
        "disabled": entity.disabled,
        "aliases": aliases,
        "creation_time": time(entity.creation_time),
        "last_update_time": time(entity.last_update_time),
        "direct_group_ids": group_ids,
        "group_ids": group_ids,
        "inherited_group_ids": [],
        "merged_entity_ids": null,
        "namespace_id": "root",
    })))
}

fn alias_json(alias: &Alias) -> Value {
    json!({
        "id": alias.id,
        "canonical_id": alias.canonical_id,
        "mount_accessor": alias.mount_accessor,
        "mount_type": alias.mount_type,
        "name": alias.name,
        "metadata": alias.metadata,
        "creation_time": time(alias.creation_time),
        "namespace_id": "root",
    })
}

fn group_json(group: &Group) -> Value {
    json!({
        "id": group.id,
        "name": group.name,
        "policies": group.policies,
        "member_entity_ids": group.member_entity_ids,
        "member_group_ids": null,
        "parent_group_ids": null,
        "metadata": if group.metadata.is_empty() { Value::Null } else { json!(group.metadata) },
        "type": "internal",
        "creation_time": time(group.creation_time),
        "last_update_time": time(group.last_update_time),
        "namespace_id": "root",
    })
}

fn list_keys(keys: Vec<String>) -> Result<Option<Response>, Error> {
    if keys.is_empty() {
        return Ok(None);
    }
    Ok(Some(data(json!({ "keys": keys }))))
}

fn data(value: Value) -> Response {
    match value {
        Value::Object(map) => Response::with_data(map),
        _ => Response::default(),
    }
}

fn string_map(value: Option<&Value>) -> Result<std::collections::BTreeMap<String, String>, Error> {
    match value {
        None | Some(Value::Null) => Ok(Default::default()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(Error::invalid("metadata values must be strings")),
            })
            .collect(),
        Some(_) => Err(Error::invalid("metadata must be a map of strings")),
    }
}
