//! Accounts: the platform's own users (admins and auditors) — list, add, set a password, remove.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::html;

use super::page::{self, csrf, time, visible, Nav};
use super::{blocking, error_page, redirect, AdminForm, Signed};
use crate::api::Shared;
use crate::auth;
use crate::store::{Role, StoreError};

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/accounts", get(list).post(add))
        .route("/accounts/{name}/password", post(set_password))
        .route("/accounts/{name}/remove", post(remove))
}

async fn list(State(state): State<Shared>, signed: Signed) -> Response {
    if let Err(r) = signed.admin() {
        return r.into_response();
    }
    page_with(&state, &signed, None, StatusCode::OK).await
}

/// The page, with an error from the last form (and its status).
async fn page_with(
    state: &Shared,
    signed: &Signed,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let cat = state.catalog.clone();
    let users = match blocking(move || cat.users()).await {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    let mut resp = page::layout(
        "Accounts",
        signed,
        Nav::Accounts,
        html! {
            h1 { "Accounts" }
            p { "Who may sign in to this platform: admins see and change everything; auditors see only the sessions assigned to them." }
            @if let Some(e) = &error { p.error role="alert" { (e) } }
            table.accounts {
                thead { tr { th { "Name" } th { "Role" } th { "Added" } th { "Action" } } }
                tbody { @for u in &users {
                    @let name = super::urlencode(&u.name);
                    tr data-account=(u.name) {
                        td { (visible(&u.name)) }
                        td { (u.role.as_str()) }
                        td { (time(u.created_at)) }
                        td.actions {
                            form.inline method="post" action=(format!("/accounts/{name}/password")) {
                                (csrf(signed))
                                input type="password" name="password" placeholder="new password" autocomplete="new-password" minlength=(auth::MIN_PASSWORD_CHARS) required;
                                button type="submit" { "Set password" }
                            }
                            @if u.name != signed.viewer.name {
                                form.inline method="post" action=(format!("/accounts/{name}/remove")) {
                                    (csrf(signed))
                                    button type="submit" data-confirm="Remove this account? Its sign-ins end now." { "Remove" }
                                }
                            }
                        }
                    }
                } }
            }
            h2 { "Add an account" }
            form.account method="post" action="/accounts" {
                (csrf(signed))
                label { "Name" input name="name" required autocomplete="off"; }
                label { "Role"
                    select name="role" {
                        option value="auditor" { "auditor" }
                        option value="admin" { "admin" }
                    }
                }
                label { "Password" input type="password" name="password" autocomplete="new-password" minlength=(auth::MIN_PASSWORD_CHARS) required; }
                label { "Password again" input type="password" name="password2" autocomplete="new-password" required; }
                button type="submit" { "Add" }
            }
        },
    );
    *resp.status_mut() = status;
    resp
}

async fn add(State(state): State<Shared>, AdminForm { signed, form }: AdminForm) -> Response {
    let name = form.get("name").trim().to_string();
    let password = form.get("password").to_string();
    let role = match Role::parse(form.get("role")) {
        Some(role) => role,
        None => {
            return page_with(
                &state,
                &signed,
                Some("choose a role".into()),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    };
    let checked = auth::check_user_name(&name)
        .and_then(|_| auth::check_new_password(&password))
        .and_then(|_| {
            if password == form.get("password2") {
                Ok(())
            } else {
                Err("the two passwords differ".into())
            }
        });
    if let Err(why) = checked {
        return page_with(&state, &signed, Some(why), StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let (store, cat) = (state.store.clone(), state.catalog.clone());
    let by = signed.viewer.name.clone();
    let who = name.clone();
    let result = blocking(move || {
        let hash =
            auth::hash_password(&password).map_err(|e| StoreError::Invalid(e.to_string()))?;
        store.add_user(&who, role, &hash)?;
        cat.log_access(
            &by,
            "add-account",
            None,
            &format!("{who} ({})", role.as_str()),
        )
    })
    .await;
    match result {
        Ok(()) => {
            tracing::info!(account = %name, role = role.as_str(), by = %signed.viewer.name, "account added");
            redirect("/accounts")
        }
        Err(super::WebError::Store(StoreError::Conflict(msg))) => {
            page_with(&state, &signed, Some(msg), StatusCode::CONFLICT).await
        }
        Err(e) => e.into_response(),
    }
}

async fn set_password(
    State(state): State<Shared>,
    Path(name): Path<String>,
    AdminForm { signed, form }: AdminForm,
) -> Response {
    let password = form.get("password").to_string();
    if let Err(why) = auth::check_new_password(&password) {
        return page_with(&state, &signed, Some(why), StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let cat = state.catalog.clone();
    let by = signed.viewer.name.clone();
    let result = blocking(move || {
        let hash =
            auth::hash_password(&password).map_err(|e| StoreError::Invalid(e.to_string()))?;
        cat.set_password(&name, &hash, &by)
    })
    .await;
    match result {
        Ok(true) => redirect("/accounts"),
        Ok(false) => error_page(StatusCode::NOT_FOUND, "no such account"),
        Err(e) => e.into_response(),
    }
}

async fn remove(
    State(state): State<Shared>,
    Path(name): Path<String>,
    AdminForm { signed, .. }: AdminForm,
) -> Response {
    if name == signed.viewer.name {
        return error_page(StatusCode::CONFLICT, "you cannot remove your own account");
    }
    let cat = state.catalog.clone();
    let by = signed.viewer.name.clone();
    match blocking(move || cat.remove_user(&name, &by)).await {
        Ok(true) => redirect("/accounts"),
        Ok(false) => error_page(StatusCode::NOT_FOUND, "no such account"),
        Err(e) => e.into_response(),
    }
}
