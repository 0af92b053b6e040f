//! `gateway admin ...`: users, plans, keys and usage, straight on the store, as tables.

use clap::Subcommand;
use gw_server::Config;
use gw_server::app::open_store;
use gw_store::{Store, User};

#[derive(Debug, Subcommand)]
pub(crate) enum AdminCommand {
    /// Users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Gateway keys.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Usage per user, provider, model and modality for a period.
    Usage {
        /// Only this user (id or name).
        #[arg(long)]
        user: Option<String>,
        /// The period (`2026-11`); the current month by default.
        #[arg(long)]
        period: Option<String>,
    },
    /// The plans and their limits.
    Plans,
}

#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    /// Create a user on a plan.
    Create {
        /// A unique name.
        name: String,
        /// free, basic, pro or enterprise (or a plan of your plans file).
        #[arg(long)]
        plan: String,
    },
    /// List users.
    List,
    /// Move a user to another plan.
    SetPlan {
        /// The user's id or name.
        user: String,
        /// The new plan.
        plan: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeyCommand {
    /// Create a key for a user; it is printed once and only its hash is kept.
    Create {
        /// The user's id or name.
        user: String,
        /// A label for the key.
        #[arg(long, default_value = "default")]
        name: String,
    },
    /// List a user's keys.
    List {
        /// The user's id or name.
        user: String,
    },
    /// Revoke a key: it stops working at once.
    Revoke {
        /// The key's id (`key_...`).
        key_id: String,
    },
}

/// Why an admin command failed.
#[derive(Debug)]
pub(crate) enum AdminError {
    /// The configuration has no store to administer.
    StoreDisabled,
    /// The configuration could not be used (the store could not be opened).
    Config(gw_server::ConfigError),
    /// The store refused or failed.
    Store(llm_gateway::Error),
    /// No user has this id or name.
    NoSuchUser(String),
}

impl std::fmt::Display for AdminError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::StoreDisabled => {
                f.write_str("store.enabled is false: there are no users to administer")
            }
            Self::Config(e) => e.fmt(f),
            Self::Store(e) => e.fmt(f),
            Self::NoSuchUser(user) => write!(
                f,
                "no user `{user}` (give a user id or name; `gateway admin user list` shows them)"
            ),
        }
    }
}

impl std::error::Error for AdminError {}

impl From<llm_gateway::Error> for AdminError {
    fn from(e: llm_gateway::Error) -> Self {
        Self::Store(e)
    }
}

pub(crate) async fn run(config: &Config, command: AdminCommand) -> Result<(), AdminError> {
    if !config.store.enabled {
        return Err(AdminError::StoreDisabled);
    }
    let store = open_store(config, false)
        .await
        .map_err(AdminError::Config)?;
    let result = dispatch(&store, command).await;
    store.close().await;
    result
}

async fn dispatch(store: &Store, command: AdminCommand) -> Result<(), AdminError> {
    match command {
        AdminCommand::User { command } => user(store, command).await,
        AdminCommand::Key { command } => key(store, command).await,
        AdminCommand::Usage { user, period } => usage(store, user, period).await,
        AdminCommand::Plans => {
            plans(store);
            Ok(())
        }
    }
}

async fn user(store: &Store, command: UserCommand) -> Result<(), AdminError> {
    match command {
        UserCommand::Create { name, plan } => {
            let user = store.create_user(&name, &plan).await?;
            print_users(&[user]);
        }
        UserCommand::List => print_users(&store.list_users().await?),
        UserCommand::SetPlan { user, plan } => {
            let user = find_user(store, &user).await?;
            print_users(&[store.set_plan(&user.id, &plan).await?]);
        }
    }
    Ok(())
}

async fn key(store: &Store, command: KeyCommand) -> Result<(), AdminError> {
    match command {
        KeyCommand::Create { user, name } => {
            let user = find_user(store, &user).await?;
            let (info, secret) = store.create_key(&user.id, &name).await?;
            println!("key id:  {}", info.id);
            println!("user:    {} ({})", user.name, user.id);
            println!("key:     {}", secret.expose());
            println!("Store this key now: it is shown only once and cannot be recovered.");
        }
        KeyCommand::List { user } => {
            let user = find_user(store, &user).await?;
            let keys = store.list_keys(&user.id).await?;
            let rows: Vec<Vec<String>> = keys
                .iter()
                .map(|k| {
                    vec![
                        k.id.clone(),
                        k.name.clone(),
                        format!("{}…", k.prefix),
                        gw_store::format_utc(k.created_at),
                        k.revoked_at
                            .map(gw_store::format_utc)
                            .unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            print_table(&["KEY ID", "NAME", "PREFIX", "CREATED", "REVOKED"], &rows);
        }
        KeyCommand::Revoke { key_id } => {
            store.revoke_key(&key_id).await?;
            println!("revoked {key_id}");
        }
    }
    Ok(())
}

async fn usage(
    store: &Store,
    user: Option<String>,
    period: Option<String>,
) -> Result<(), AdminError> {
    let period =
        period.unwrap_or_else(|| gw_store::Period::Month.key(std::time::SystemTime::now()));
    let (rows, names) = match user {
        Some(user) => {
            let user = find_user(store, &user).await?;
            (store.usage_summary(&user.id, &period).await?, vec![user])
        }
        None => (
            store.usage_summary_all(&period).await?,
            store.list_users().await?,
        ),
    };
    let name_of = |id: &str| {
        names
            .iter()
            .find(|u| u.id == id)
            .map_or(id.to_owned(), |u| u.name.clone())
    };
    let mut table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                name_of(&r.user_id),
                format!("{}/{}", r.provider, r.model),
                r.modality.as_str().to_owned(),
                r.requests.to_string(),
                r.errors.to_string(),
                r.input_tokens.to_string(),
                r.output_tokens.to_string(),
                r.units.to_string(),
                format!(
                    "{}{}",
                    r.cost,
                    if r.unpriced > 0 { " (+unpriced)" } else { "" }
                ),
            ]
        })
        .collect();
    let total = rows.iter().map(|r| r.cost).sum::<llm_gateway::Cost>();
    table.push(vec![
        "TOTAL".into(),
        String::new(),
        String::new(),
        rows.iter().map(|r| r.requests).sum::<u64>().to_string(),
        rows.iter().map(|r| r.errors).sum::<u64>().to_string(),
        String::new(),
        String::new(),
        String::new(),
        total.to_string(),
    ]);
    println!("period {period}");
    print_table(
        &[
            "USER",
            "MODEL",
            "MODALITY",
            "REQUESTS",
            "ERRORS",
            "IN TOKENS",
            "OUT TOKENS",
            "UNITS",
            "COST USD",
        ],
        &table,
    );
    Ok(())
}

fn plans(store: &Store) {
    let rows: Vec<Vec<String>> = store
        .plans()
        .iter()
        .map(|p| {
            let limits: Vec<String> = p
                .modalities
                .iter()
                .map(|(m, l)| {
                    let show = |v: Option<u64>| v.map_or("∞".to_owned(), |v| v.to_string());
                    if *m == llm_gateway::Modality::Text {
                        format!("text: {} req, {} tokens", show(l.requests), show(l.tokens))
                    } else {
                        format!("{m}: {} req, {} units", show(l.requests), show(l.units))
                    }
                })
                .collect();
            vec![
                p.name.clone(),
                p.cost_cap.map_or("∞".into(), |c| c.to_string()),
                p.allow.join(" "),
                limits.join("; "),
            ]
        })
        .collect();
    print_table(
        &["PLAN", "COST CAP USD", "MODELS", "LIMITS PER PERIOD"],
        &rows,
    );
}

async fn find_user(store: &Store, user: &str) -> Result<User, AdminError> {
    if let Some(u) = store.get_user(user).await? {
        return Ok(u);
    }
    store
        .get_user_by_name(user)
        .await?
        .ok_or_else(|| AdminError::NoSuchUser(user.to_owned()))
}

fn print_users(users: &[User]) {
    let rows: Vec<Vec<String>> = users
        .iter()
        .map(|u| {
            vec![
                u.id.clone(),
                u.name.clone(),
                u.plan.clone(),
                gw_store::format_utc(u.created_at),
            ]
        })
        .collect();
    print_table(&["USER ID", "NAME", "PLAN", "CREATED"], &rows);
}

fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
