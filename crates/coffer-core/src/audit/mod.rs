//! The audit broker: every request and response, recorded by every audit device declared in the
//! configuration before the request runs (fail closed), with secrets and tokens HMAC'd.
//!
//! This file fixes the interface the pipeline calls; the devices, the entry format and the hash
//! chain live beside it.

use coffer_sdk::{Error, Request, Response};

use crate::barrier::Barrier;
use crate::mount::Route;
use crate::token::LiveToken;

/// An `audit "TYPE" "NAME" { ... }` block of the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditDeviceConfig {
    /// `file`, `socket` or `syslog`.
    pub device_type: String,
    /// The device's path (its name), e.g. `file/`.
    pub path: String,
    pub description: String,
    pub options: std::collections::BTreeMap<String, String>,
}

/// What the pipeline knows of one request when it audits it.
pub struct AuditRecord<'a> {
    /// The request as the client sent it: full path, before routing.
    pub request: &'a Request,
    /// The mount it was routed to.
    pub route: &'a Route,
    /// The token the client presented (HMAC'd before it is written anywhere).
    pub client_token: Option<&'a str>,
    /// The token's entry, when the token was valid.
    pub token: Option<&'a LiveToken>,
}

/// Fans audit entries out to the configured devices.
pub struct AuditBroker {
    configs: Vec<AuditDeviceConfig>,
}

impl AuditBroker {
    /// A broker for the configured devices; they open at unseal, when their keys are readable.
    pub fn new(configs: Vec<AuditDeviceConfig>) -> Self {
        AuditBroker { configs }
    }

    /// Whether any device is configured (then every request is audited, and refused if no
    /// device records it).
    pub fn enabled(&self) -> bool {
        !self.configs.is_empty()
    }

    /// Opens the devices after unseal.
    pub async fn start(&self, _barrier: &Barrier) -> Result<(), Error> {
        if self.enabled() {
            return Err(Error::internal(
                "audit devices are configured but not supported by this build",
            ));
        }
        Ok(())
    }

    /// Closes the devices at seal.
    pub fn stop(&self) {}

    /// Records a request before it runs; `denied` is the authorisation error, if any.
    pub async fn log_request(
        &self,
        _record: &AuditRecord<'_>,
        _denied: Option<&Error>,
    ) -> Result<(), Error> {
        Ok(())
    }

    /// Records the outcome of a request.
    pub async fn log_response(
        &self,
        _record: &AuditRecord<'_>,
        _outcome: Result<&Option<Response>, &Error>,
    ) -> Result<(), Error> {
        Ok(())
    }
}
