//! Policies: the rules agents pull. A list with a ⁝ menu (New rule, New rule for workstation,
//! New rule for user) and the rule form (Main and Application tabs), validated field by field.

use std::collections::HashMap;
use std::path::PathBuf;

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use libsegura::policy::{Guideline, Permission, Rule, Scope, SubjectType};
use maud::{html, Markup};
use uuid::Uuid;

use super::page::{self, csrf, visible, Nav};
use super::AdminForm;
use super::{blocking, error_page, redirect, Form, Signed};
use crate::api::Shared;
use crate::store::Role;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/policies", get(list))
        .route("/policies/new", get(new_form).post(create))
        .route("/policies/{id}", get(edit_form).post(save))
        .route("/policies/{id}/delete", post(delete))
}

fn scope_label(r: &Rule) -> String {
    match (r.scope, &r.scope_target) {
        (Scope::All, _) => "every workstation".into(),
        (Scope::Workstation, Some(t)) => format!("workstation {t}"),
        (Scope::User, Some(t)) => format!("user {t}"),
        (_, None) => "?".into(),
    }
}

fn guideline_label(g: Guideline) -> &'static str {
    match g {
        Guideline::BinaryRun => "Binary run",
        Guideline::LoginSession => "Login session",
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "Yes"
    } else {
        "No"
    }
}

async fn list(State(state): State<Shared>, signed: Signed, uri: Uri) -> Response {
    if let Err(r) = signed.admin() {
        return r.into_response();
    }
    let saved = Form::query(uri.query()).get("saved").to_string();
    let (store, cat) = (state.store.clone(), state.catalog.clone());
    let data = blocking(move || {
        let bundle = store.policy()?;
        let mut auditors = HashMap::new();
        for r in &bundle.rules {
            auditors.insert(r.name.clone(), cat.rule_auditors(&r.name)?);
        }
        Ok((bundle, auditors))
    })
    .await;
    let (bundle, auditors) = match data {
        Ok(d) => d,
        Err(e) => return e.into_response(),
    };
    page::layout(
        "Policies",
        &signed,
        Nav::Policies,
        html! {
            div.titlebar {
                h1 { "Access policies" }
                (menu())
            }
            @if !saved.is_empty() { p.notice role="status" { "Saved rule " (visible(&saved)) ". Agents pick it up on their next sync (policy version " (bundle.version) ")." } }
            p.count { (bundle.rules.len()) " rules · policy version " (bundle.version) }
            table.rules {
                thead { tr {
                    th { "Policy name" } th { "Enabled" } th { "Guideline" } th { "Applies to" }
                    th { "User or group" } th { "Application path" } th { "Audit" } th { "Recording" }
                    th { "Permission" } th { "Default auditors" } th { "Action" }
                } }
                tbody {
                    @for r in &bundle.rules {
                        @let id = r.id.clone().unwrap_or_default();
                        tr data-rule=(r.name) {
                            td { (visible(&r.name)) }
                            td { (yes_no(r.enabled)) }
                            td { (guideline_label(r.guideline)) }
                            td { (visible(&scope_label(r))) }
                            td { (match r.subject_type { SubjectType::User => "user ", SubjectType::Group => "group " }) (visible(&r.subject)) }
                            td { @if let Some(p) = &r.application_path { code { (visible(&p.display().to_string())) } @if r.path_is_symlink { " (link)" } } }
                            td { (yes_no(r.enable_audit)) }
                            td { (yes_no(r.enable_recording)) }
                            td { (match r.permission { Permission::AllowRecording => "allow recording", Permission::DenyRecording => "deny recording" }) }
                            td { (auditors.get(&r.name).map(|a| a.join(", ")).unwrap_or_default()) }
                            td.actions {
                                a href=(format!("/policies/{id}")) { "Edit" }
                                form.inline method="post" action=(format!("/policies/{id}/delete")) {
                                    (csrf(&signed))
                                    button type="submit" { "Delete" }
                                }
                            }
                        }
                    }
                    @if bundle.rules.is_empty() { tr { td colspan="11" { "No rules yet: use the ⁝ menu to add one." } } }
                }
            }
        },
    )
}

fn menu() -> Markup {
    html! {
        details.menu {
            summary aria-label="Policy actions" title="Policy actions" { "⁝" }
            ul {
                li { a href="/policies/new" { "New rule" } }
                li { a href="/policies/new?scope=workstation" { "New rule for workstation" } }
                li { a href="/policies/new?scope=user" { "New rule for user" } }
            }
        }
    }
}

/// The form's values, as typed (so a refused form shows them again).
#[derive(Debug, Clone)]
struct RuleForm {
    name: String,
    enabled: bool,
    guideline: String,
    scope: String,
    scope_target: String,
    enable_audit: String,
    enable_recording: String,
    application_path: String,
    path_is_symlink: String,
    permission: String,
    subject_type: String,
    subject: String,
    auditors: Vec<String>,
    version: String,
}

impl RuleForm {
    fn blank(scope: &str) -> RuleForm {
        RuleForm {
            name: String::new(),
            enabled: true,
            guideline: "login-session".into(),
            scope: match scope {
                "workstation" | "user" => scope.into(),
                _ => "all".into(),
            },
            scope_target: String::new(),
            enable_audit: "yes".into(),
            enable_recording: "yes".into(),
            application_path: String::new(),
            path_is_symlink: "no".into(),
            permission: "allow-recording".into(),
            subject_type: "user".into(),
            subject: String::new(),
            auditors: Vec::new(),
            version: String::new(),
        }
    }

    fn of(r: &Rule, auditors: Vec<String>) -> RuleForm {
        RuleForm {
            name: r.name.clone(),
            enabled: r.enabled,
            guideline: match r.guideline {
                Guideline::BinaryRun => "binary-run",
                Guideline::LoginSession => "login-session",
            }
            .into(),
            scope: match r.scope {
                Scope::All => "all",
                Scope::Workstation => "workstation",
                Scope::User => "user",
            }
            .into(),
            scope_target: r.scope_target.clone().unwrap_or_default(),
            enable_audit: yes_no(r.enable_audit).to_lowercase(),
            enable_recording: yes_no(r.enable_recording).to_lowercase(),
            application_path: r
                .application_path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            path_is_symlink: yes_no(r.path_is_symlink).to_lowercase(),
            permission: match r.permission {
                Permission::AllowRecording => "allow-recording",
                Permission::DenyRecording => "deny-recording",
            }
            .into(),
            subject_type: match r.subject_type {
                SubjectType::User => "user",
                SubjectType::Group => "group",
            }
            .into(),
            subject: r.subject.clone(),
            auditors,
            version: String::new(),
        }
    }

    fn from_form(f: &Form) -> RuleForm {
        RuleForm {
            name: f.get("name").trim().to_string(),
            enabled: f.has("enabled"),
            guideline: f.get("guideline").into(),
            scope: f.get("scope").into(),
            scope_target: match f.get("scope") {
                "workstation" => f.get("scope_host"),
                "user" => f.get("scope_user"),
                _ => "",
            }
            .trim()
            .into(),
            enable_audit: f.get("enable_audit").into(),
            enable_recording: f.get("enable_recording").into(),
            application_path: f.get("application_path").trim().into(),
            path_is_symlink: f.get("path_is_symlink").into(),
            permission: f.get("permission").into(),
            subject_type: f.get("subject_type").into(),
            subject: f.get("subject").trim().into(),
            auditors: f.all("auditor"),
            version: f.get("version").into(),
        }
    }

    /// The rule, or the fields at fault and why.
    fn rule(&self, id: Option<String>) -> Result<Rule, HashMap<&'static str, String>> {
        let mut errors = HashMap::new();
        let yn = |field: &'static str, v: &str, errors: &mut HashMap<&'static str, String>| match v
        {
            "yes" => true,
            "no" => false,
            _ => {
                errors.insert(field, "choose Yes or No".into());
                false
            }
        };
        let enable_audit = yn("enable_audit", &self.enable_audit, &mut errors);
        let enable_recording = yn("enable_recording", &self.enable_recording, &mut errors);
        let path_is_symlink = yn("path_is_symlink", &self.path_is_symlink, &mut errors);
        let guideline = match self.guideline.as_str() {
            "binary-run" => Guideline::BinaryRun,
            "login-session" => Guideline::LoginSession,
            _ => {
                errors.insert("guideline", "choose Binary run or Login session".into());
                Guideline::LoginSession
            }
        };
        let scope = match self.scope.as_str() {
            "all" => Scope::All,
            "workstation" => Scope::Workstation,
            "user" => Scope::User,
            _ => {
                errors.insert(
                    "scope",
                    "choose every workstation, one workstation or one user".into(),
                );
                Scope::All
            }
        };
        let permission = match self.permission.as_str() {
            "allow-recording" => Permission::AllowRecording,
            "deny-recording" => Permission::DenyRecording,
            _ => {
                errors.insert("permission", "choose a permission".into());
                Permission::AllowRecording
            }
        };
        let subject_type = match self.subject_type.as_str() {
            "user" => SubjectType::User,
            "group" => SubjectType::Group,
            _ => {
                errors.insert("subject_type", "choose User or Group".into());
                SubjectType::User
            }
        };
        if self.name.chars().any(char::is_control) {
            errors.insert("name", "must not contain control characters".into());
        }
        let rule = Rule {
            id,
            name: self.name.clone(),
            enabled: self.enabled,
            scope,
            scope_target: (scope != Scope::All && !self.scope_target.is_empty())
                .then(|| self.scope_target.clone()),
            guideline,
            enable_audit,
            enable_recording,
            application_path: (guideline == Guideline::BinaryRun
                && !self.application_path.is_empty())
            .then(|| PathBuf::from(&self.application_path)),
            path_is_symlink: guideline == Guideline::BinaryRun && path_is_symlink,
            permission,
            subject_type,
            subject: self.subject.clone(),
        };
        if let Err((field, why)) = rule.validate() {
            errors.entry(field).or_insert(why);
        }
        if errors.is_empty() {
            Ok(rule)
        } else {
            Err(errors)
        }
    }
}

/// What the rule form offers to choose from, and what was wrong with the last try.
struct Choices {
    /// Approved workstations and users: what a rule may be scoped to.
    hosts: Vec<String>,
    users: Vec<String>,
    auditors: Vec<String>,
    errors: HashMap<&'static str, String>,
}

fn form_page(
    signed: &Signed,
    title: &str,
    action: &str,
    v: &RuleForm,
    c: &Choices,
    is_new: bool,
) -> Markup {
    let (errors, hosts, auditors) = (&c.errors, &c.hosts, &c.auditors);
    let err = |f: &str| {
        html! { @if let Some(e) = errors.get(f) { span.field-error role="alert" id=(format!("{f}-error")) { (e) } } }
    };
    let opt = |value: &str, label: &str, current: &str| {
        html! { option value=(value) selected[value == current] { (label) } }
    };
    html! {
            h1 { (title) }
            @if !errors.is_empty() { p.error role="alert" { "The rule was not saved: see the fields marked below." } }
            form.rule method="post" action=(action) novalidate {
                (csrf(signed))
                input type="hidden" name="version" value=(v.version);
                div.tabs role="tablist" {
                    button type="button" role="tab" data-tab="main" aria-selected="true" { "Main" }
                    button type="button" role="tab" data-tab="application" aria-selected="false" { "Application" }
                }
                fieldset.tab #tab-main data-tab="main" {
                    legend { "Main" }
                    label { "Policy name" input name="name" value=(v.name) required; (err("name")) }
                    label.check { input type="checkbox" name="enabled" checked[v.enabled]; "Enabled" }
                    label { "Guideline"
                        select name="guideline" {
                            (opt("binary-run", "Binary run", &v.guideline))
                            (opt("login-session", "Login session", &v.guideline))
                        }
                        (err("guideline"))
                    }
                    label { "Applies to"
                        select name="scope" {
                            (opt("all", "Every workstation", &v.scope))
                            (opt("workstation", "One workstation", &v.scope))
                            (opt("user", "One user", &v.scope))
                        }
                        (err("scope"))
                    }
    label.scope-for data-scope="workstation" { "Workstation (approved)"
                        select name="scope_host" {
                            option value="" { "choose a workstation" }
                            @for h in hosts { (opt(h, h, if v.scope == "workstation" { &v.scope_target } else { "" })) }
                            @if v.scope == "workstation" && !v.scope_target.is_empty() && !hosts.contains(&v.scope_target) {
                                option value=(v.scope_target) selected { (v.scope_target) " (not approved)" }
                            }
                        }
                        span.hint { "approve workstations on the Hosts page" }
                        @if v.scope == "workstation" { (err("scope_target")) }
                    }
                    label.scope-for data-scope="user" { "User (approved)"
                        select name="scope_user" {
                            option value="" { "choose a user" }
                            @for u in &c.users { (opt(u, u, if v.scope == "user" { &v.scope_target } else { "" })) }
                            @if v.scope == "user" && !v.scope_target.is_empty() && !c.users.contains(&v.scope_target) {
                                option value=(v.scope_target) selected { (v.scope_target) " (not approved)" }
                            }
                        }
                        span.hint { "the username, identical on every host; approve users on the Users page" }
                        @if v.scope == "user" { (err("scope_target")) }
                    }
                    fieldset.auditors {
                        legend { "Default auditors (may view what this rule records)" }
                        @for a in auditors {
                            label.check { input type="checkbox" name="auditor" value=(a) checked[v.auditors.contains(a)]; (a) }
                        }
                        @if auditors.is_empty() { span.hint { "no auditors yet" } }
                    }
                }
                fieldset.tab #tab-application data-tab="application" {
                    legend { "Application" }
                    label { "Enable audit?"
                        select name="enable_audit" required { (opt("yes", "Yes", &v.enable_audit)) (opt("no", "No", &v.enable_audit)) }
                        (err("enable_audit"))
                    }
                    label { "Enable session recording?"
                        select name="enable_recording" { (opt("yes", "Yes", &v.enable_recording)) (opt("no", "No", &v.enable_recording)) }
                        (err("enable_recording"))
                    }
                    label { "Application path"
                        input name="application_path" value=(v.application_path) placeholder="/usr/bin/ping";
                        span.hint { "as `which` prints it; for Binary run rules" }
                        (err("application_path"))
                    }
                    label { "Is the path a symbolic link?"
                        select name="path_is_symlink" { (opt("no", "No", &v.path_is_symlink)) (opt("yes", "Yes", &v.path_is_symlink)) }
                        span.hint { "then the link and its target are both covered" }
                        (err("path_is_symlink"))
                    }
                    label { "Permission"
                        select name="permission" {
                            (opt("allow-recording", "Allow recording", &v.permission))
                            (opt("deny-recording", "Deny recording (exemption)", &v.permission))
                        }
                        (err("permission"))
                    }
                    label { "User or group"
                        select name="subject_type" { (opt("user", "User", &v.subject_type)) (opt("group", "Group", &v.subject_type)) }
                        (err("subject_type"))
                    }
                    label { "User or group name"
                        input name="subject" value=(v.subject) required;
                        span.hint { "a group matches only users whose primary group it is" }
                        (err("subject"))
                    }
                }
                div.buttons {
                    button type="submit" name="submit" { (if is_new { "Add" } else { "Save" }) }
                    a.button href="/policies" { "Cancel" }
                }
            }
        }
}

/// Approved workstations and users for the scope pickers, and the auditors.
async fn choices(state: &Shared) -> Result<(Choices, u64), Box<Response>> {
    let (store, cat) = (state.store.clone(), state.catalog.clone());
    blocking(move || {
        let (hosts, users) = cat.approved_scopes()?;
        let auditors = cat
            .users()?
            .into_iter()
            .filter(|u| u.role == Role::Auditor)
            .map(|u| u.name)
            .collect();
        let c = Choices {
            hosts,
            users,
            auditors,
            errors: HashMap::new(),
        };
        Ok((c, store.policy()?.version))
    })
    .await
    .map_err(|e| Box::new(e.into_response()))
}

async fn new_form(State(state): State<Shared>, signed: Signed, uri: Uri) -> Response {
    if let Err(r) = signed.admin() {
        return r.into_response();
    }
    let scope = Form::query(uri.query()).get("scope").to_string();
    let (choices, version) = match choices(&state).await {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let mut v = RuleForm::blank(&scope);
    v.version = version.to_string();
    let title = match v.scope.as_str() {
        "workstation" => "New rule for workstation",
        "user" => "New rule for user",
        _ => "New rule",
    };
    page::layout(
        title,
        &signed,
        Nav::Policies,
        form_page(&signed, title, "/policies/new", &v, &choices, true),
    )
}

async fn edit_form(
    State(state): State<Shared>,
    signed: Signed,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = signed.admin() {
        return r.into_response();
    }
    let (choices, version) = match choices(&state).await {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let (store, cat) = (state.store.clone(), state.catalog.clone());
    let found = blocking(move || {
        let rule = store
            .policy()?
            .rules
            .into_iter()
            .find(|r| r.id.as_deref() == Some(id.as_str()));
        match rule {
            Some(r) => {
                let a = cat.rule_auditors(&r.name)?;
                Ok(Some((r, a)))
            }
            None => Ok(None),
        }
    })
    .await;
    let (rule, chosen) = match found {
        Ok(Some(x)) => x,
        Ok(None) => return error_page(StatusCode::NOT_FOUND, "no such rule"),
        Err(e) => return e.into_response(),
    };
    let mut v = RuleForm::of(&rule, chosen);
    v.version = version.to_string();
    let title = format!("Rule {}", rule.name);
    let action = format!("/policies/{}", rule.id.unwrap_or_default());
    page::layout(
        &title,
        &signed,
        Nav::Policies,
        form_page(&signed, &title, &action, &v, &choices, false),
    )
}

async fn create(State(state): State<Shared>, f: AdminForm) -> Response {
    store_rule(state, f, None).await
}

async fn save(State(state): State<Shared>, Path(id): Path<String>, f: AdminForm) -> Response {
    store_rule(state, f, Some(id)).await
}

/// Validates the form and stores the rule (new when `id` is None), or shows the form again
/// with the errors beside the fields.
async fn store_rule(state: Shared, f: AdminForm, id: Option<String>) -> Response {
    let AdminForm { signed, form } = f;
    let v = RuleForm::from_form(&form);
    let is_new = id.is_none();
    let rule_id = id.clone().unwrap_or_else(|| Uuid::now_v7().to_string());
    let (store, cat) = (state.store.clone(), state.catalog.clone());
    let by = signed.viewer.name.clone();
    let checked = v.rule(Some(rule_id.clone()));
    let result = blocking(move || {
        let bundle = store.policy()?;
        let mut errors = match &checked {
            Ok(_) => HashMap::new(),
            Err(e) => e.clone(),
        };
        if !v.version.is_empty() && v.version != bundle.version.to_string() {
            errors.insert(
                "version",
                format!(
                    "the policy changed (version {} → {}) since this form was opened: reload it",
                    v.version, bundle.version
                ),
            );
        }
        if bundle
            .rules
            .iter()
            .any(|r| r.name == v.name && r.id.as_deref() != Some(rule_id.as_str()))
        {
            errors.insert("name", "another rule has this name".into());
        }
        // A rule for one workstation or one user names an approved one.
        let (hosts, users) = cat.approved_scopes()?;
        let target = &v.scope_target;
        match v.scope.as_str() {
            "workstation" if !target.is_empty() && !hosts.contains(target) => {
                errors.insert(
                    "scope_target",
                    format!("{target} is not an approved workstation"),
                );
            }
            "user" if !target.is_empty() && !users.contains(target) => {
                errors.insert("scope_target", format!("{target} is not an approved user"));
            }
            _ => {}
        }
        let mut rules = bundle.rules;
        let old_name = rules
            .iter()
            .find(|r| r.id.as_deref() == Some(rule_id.as_str()))
            .map(|r| r.name.clone());
        if !is_new && old_name.is_none() {
            return Err(crate::store::StoreError::NotFound("no such rule".into()));
        }
        let rule = match checked {
            Ok(r) if errors.is_empty() => r,
            _ => return Ok(Err((v, errors))),
        };
        match rules.iter_mut().find(|r| r.id == rule.id) {
            Some(slot) => *slot = rule.clone(),
            None => rules.push(rule.clone()),
        }
        let version = store.set_policy(&rules)?;
        if let Some(old) = old_name.filter(|o| *o != rule.name) {
            cat.set_rule_auditors(&old, &[])?;
        }
        cat.set_rule_auditors(&rule.name, &v.auditors)?;
        cat.log_access(
            &by,
            if is_new { "add-rule" } else { "save-rule" },
            None,
            &format!("{} (policy version {version})", rule.name),
        )?;
        Ok(Ok(rule.name))
    })
    .await;
    match result {
        Ok(Ok(name)) => {
            tracing::info!(rule = %name, by = %signed.viewer.name, "rule saved");
            redirect(&format!("/policies?saved={}", super::urlencode(&name)))
        }
        Ok(Err((v, errors))) => {
            let (mut choices, _) = match choices(&state).await {
                Ok(c) => c,
                Err(r) => return *r,
            };
            choices.errors = errors;
            let errors = &choices.errors;
            let (title, action) = match &id {
                None => ("New rule".to_string(), "/policies/new".to_string()),
                Some(id) => (format!("Rule {}", v.name), format!("/policies/{id}")),
            };
            let mut body = page::layout(
                &title,
                &signed,
                Nav::Policies,
                html! {
                    @if let Some(e) = errors.get("version") { p.error role="alert" { (e) } }
                    (form_page(&signed, &title, &action, &v, &choices, is_new))
                },
            );
            *body.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            body
        }
        Err(e) => e.into_response(),
    }
}

async fn delete(
    State(state): State<Shared>,
    Path(id): Path<String>,
    AdminForm { signed, .. }: AdminForm,
) -> Response {
    let (store, cat) = (state.store.clone(), state.catalog.clone());
    let by = signed.viewer.name.clone();
    let result = blocking(move || {
        let mut rules = store.policy()?.rules;
        let Some(pos) = rules
            .iter()
            .position(|r| r.id.as_deref() == Some(id.as_str()))
        else {
            return Err(crate::store::StoreError::NotFound("no such rule".into()));
        };
        let gone = rules.remove(pos);
        let version = store.set_policy(&rules)?;
        cat.set_rule_auditors(&gone.name, &[])?;
        cat.log_access(
            &by,
            "delete-rule",
            None,
            &format!("{} (policy version {version})", gone.name),
        )
    })
    .await;
    match result {
        Ok(()) => redirect("/policies"),
        Err(e) => e.into_response(),
    }
}
