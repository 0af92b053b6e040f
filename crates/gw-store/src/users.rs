//! Users and their gateway keys.

use std::cell::RefCell;
use std::time::SystemTime;

use gateway_core::{Error, ErrorKind, Result, SecretString};
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::Store;
use crate::db::db_error;
use crate::time::{from_unix_ms, now_ms};

/// A user of the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user's id (`usr_...`): what admissions and usage rows name.
    pub id: String,
    /// The unique name the operator gave.
    pub name: String,
    /// The plan the user is on.
    pub plan: String,
    /// When the user was created.
    pub created_at: SystemTime,
}

/// A gateway key as stored: everything but the key itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The key's id (`key_...`), for revoking it.
    pub id: String,
    /// Whose key it is.
    pub user_id: String,
    /// A label (`laptop`, `ci`).
    pub name: String,
    /// The first characters of the key (`gw_AbC123`), to recognise it by.
    pub prefix: String,
    /// When it was created.
    pub created_at: SystemTime,
    /// When it was revoked, if it was.
    pub revoked_at: Option<SystemTime>,
}

impl KeyInfo {
    /// Whether the key was revoked.
    pub fn is_revoked(&self) -> bool {
        self.revoked_at.is_some()
    }
}

/// Who a valid gateway key belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedUser {
    /// The user's id.
    pub user_id: String,
    /// The user's name.
    pub name: String,
    /// The user's plan.
    pub plan: String,
    /// The id of the key used.
    pub key_id: String,
}

const KEY_PREFIX: &str = "gw_";
const KEY_RANDOM_CHARS: usize = 40;
/// `gw_` and this many random characters are kept in clear to tell keys apart.
const SHOWN_CHARS: usize = 6;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Whether `key` has the shape of a gateway key: `gw_` followed by 40 letters and digits.
pub fn is_well_formed_key(key: &str) -> bool {
    key.strip_prefix(KEY_PREFIX).is_some_and(|rest| {
        rest.len() == KEY_RANDOM_CHARS && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

/// An id: `prefix` and `n` random base62 characters from the operating system's CSPRNG, drawn
/// from a per-thread pool of its bytes (see [`RandomPool`]). Written into one `String`, where
/// `format!` would take a second one and its formatting machinery (about 800 instructions, on
/// every admission).
pub fn random_id(prefix: &str, n: usize) -> Result<String> {
    let mut id = String::with_capacity(prefix.len() + n);
    id.push_str(prefix);
    RANDOM.with_borrow_mut(|pool| base62(&mut id, n, || pool.next()))?;
    Ok(id)
}

/// A secret (a gateway key): `prefix` and `n` random base62 characters straight from the
/// operating system's CSPRNG, so no byte of a key to come waits in a pool in memory.
fn random_secret(prefix: &str, n: usize) -> Result<String> {
    let mut secret = String::with_capacity(prefix.len() + n);
    secret.push_str(prefix);
    let mut buf = [0u8; 64];
    let mut next = buf.len();
    base62(&mut secret, n, || {
        if next == buf.len() {
            fill_random(&mut buf)?;
            next = 0;
        }
        next += 1;
        Ok(buf[next - 1])
    })?;
    Ok(secret)
}

/// Appends `n` base62 characters from the random bytes `next` gives.
fn base62(out: &mut String, n: usize, mut next: impl FnMut() -> Result<u8>) -> Result<()> {
    let end = out.len() + n;
    while out.len() < end {
        // 248 = 4 × 62: bytes at or above it are dropped, so every character is equally likely.
        let b = next()?;
        if b < 248 {
            out.push(BASE62[usize::from(b % 62)] as char);
        }
    }
    Ok(())
}

fn fill_random(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| {
        Error::new(
            ErrorKind::Unavailable,
            format!("the operating system's random number generator failed: {e}"),
        )
    })
}

thread_local! {
    static RANDOM: RefCell<RandomPool> = const {
        RefCell::new(RandomPool {
            bytes: [0; 256],
            next: 256,
        })
    };
}

/// Bytes of the operating system's CSPRNG, asked for 256 at a time: an id for every request
/// would otherwise cost a `getrandom` system call each. A byte is zeroed once taken.
struct RandomPool {
    bytes: [u8; 256],
    next: usize,
}

impl RandomPool {
    fn next(&mut self) -> Result<u8> {
        if self.next == self.bytes.len() {
            fill_random(&mut self.bytes)?;
            self.next = 0;
        }
        let b = std::mem::take(&mut self.bytes[self.next]);
        self.next += 1;
        Ok(b)
    }
}

/// The hex SHA-256 of a key: the only form in which a key is stored.
fn key_hash(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks a user or key name: 1 to 100 characters, no control characters, no surrounding
/// spaces.
fn check_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.chars().count() > 100 {
        return Err(Error::invalid_request(format!(
            "{what} must be 1 to 100 characters long"
        )));
    }
    if name.trim() != name || name.chars().any(char::is_control) {
        return Err(Error::invalid_request(format!(
            "{what} must not start or end with spaces or contain control characters"
        )));
    }
    Ok(())
}

fn user_from_row(row: &AnyRow) -> sqlx::Result<User> {
    Ok(User {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        plan: row.try_get("plan")?,
        created_at: from_unix_ms(row.try_get("created_at")?),
    })
}

fn key_from_row(row: &AnyRow) -> sqlx::Result<KeyInfo> {
    Ok(KeyInfo {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        name: row.try_get("name")?,
        prefix: row.try_get("prefix")?,
        created_at: from_unix_ms(row.try_get("created_at")?),
        revoked_at: row
            .try_get::<Option<i64>, _>("revoked_at")?
            .map(from_unix_ms),
    })
}

fn no_user(id: &str) -> Error {
    Error::new(ErrorKind::NotFound, format!("no user with id `{id}`"))
}

impl Store {
    /// Creates a user named `name` on `plan`.
    ///
    /// Errors: [`ErrorKind::InvalidRequest`] for an unknown plan (listing the known ones), a
    /// name already taken, or an empty or overlong name.
    pub async fn create_user(&self, name: &str, plan: &str) -> Result<User> {
        check_name("a user name", name)?;
        self.plans.require(plan)?;
        let user = User {
            id: random_id("usr_", 16)?,
            name: name.to_owned(),
            plan: plan.to_owned(),
            created_at: from_unix_ms(now_ms()),
        };
        let inserted = sqlx::query(
            "INSERT INTO users (id, name, plan, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(&user.id)
        .bind(&user.name)
        .bind(&user.plan)
        .bind(crate::time::unix_ms(user.created_at))
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        if inserted.rows_affected() == 0 {
            return Err(Error::invalid_request(format!(
                "a user named `{name}` already exists"
            )));
        }
        Ok(user)
    }

    /// Moves the user `user_id` to `plan`; the counters of the period carry over.
    pub async fn set_plan(&self, user_id: &str, plan: &str) -> Result<User> {
        self.plans.require(plan)?;
        let (_guard, mut tx) = self.begin().await?;
        let row = sqlx::query(
            "UPDATE users SET plan = $2 WHERE id = $1 RETURNING id, name, plan, created_at",
        )
        .bind(user_id)
        .bind(plan)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
        if row.is_some() {
            bump_auth_epoch(&mut tx).await?;
        }
        tx.commit().await.map_err(db_error)?;
        self.forget_plan(user_id);
        // Leases were sized to the old plan's limits.
        self.release_user(Some(user_id)).await;
        match row {
            Some(row) => user_from_row(&row).map_err(db_error),
            None => Err(no_user(user_id)),
        }
    }

    /// The user with id `user_id`.
    pub async fn get_user(&self, user_id: &str) -> Result<Option<User>> {
        let row = sqlx::query("SELECT id, name, plan, created_at FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        row.as_ref()
            .map(user_from_row)
            .transpose()
            .map_err(db_error)
    }

    /// The user named `name`.
    pub async fn get_user_by_name(&self, name: &str) -> Result<Option<User>> {
        let row = sqlx::query("SELECT id, name, plan, created_at FROM users WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        row.as_ref()
            .map(user_from_row)
            .transpose()
            .map_err(db_error)
    }

    /// Every user, by name.
    pub async fn list_users(&self) -> Result<Vec<User>> {
        let rows = sqlx::query("SELECT id, name, plan, created_at FROM users ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter()
            .map(user_from_row)
            .collect::<sqlx::Result<_>>()
            .map_err(db_error)
    }

    /// Creates a key for the user `user_id`, labelled `name`. Returns what is stored and the key
    /// itself, which is shown this once: only its SHA-256 is kept.
    pub async fn create_key(&self, user_id: &str, name: &str) -> Result<(KeyInfo, SecretString)> {
        check_name("a key name", name)?;
        if self.get_user(user_id).await?.is_none() {
            return Err(no_user(user_id));
        }
        let plaintext = random_secret(KEY_PREFIX, KEY_RANDOM_CHARS)?;
        let info = KeyInfo {
            id: random_id("key_", 16)?,
            user_id: user_id.to_owned(),
            name: name.to_owned(),
            prefix: plaintext[..KEY_PREFIX.len() + SHOWN_CHARS].to_owned(),
            created_at: from_unix_ms(now_ms()),
            revoked_at: None,
        };
        sqlx::query(
            "INSERT INTO api_keys (id, user_id, name, prefix, key_hash, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&info.id)
        .bind(&info.user_id)
        .bind(&info.name)
        .bind(&info.prefix)
        .bind(key_hash(&plaintext))
        .bind(crate::time::unix_ms(info.created_at))
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok((info, SecretString::new(plaintext)))
    }

    /// Revokes the key `key_id`: it no longer authenticates. Revoking a revoked key changes
    /// nothing; an unknown id is [`ErrorKind::NotFound`].
    pub async fn revoke_key(&self, key_id: &str) -> Result<()> {
        let (_guard, mut tx) = self.begin().await?;
        let done =
            sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .bind(key_id)
                .bind(now_ms())
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        if done.rows_affected() == 1 {
            bump_auth_epoch(&mut tx).await?;
            tx.commit().await.map_err(db_error)?;
            // As for a plan change: a key lookup that read the key before this commit and
            // remembers it after the caller forgot it would be trusted until the next poll.
            self.auth.next_generation();
            return Ok(());
        }
        drop(tx);
        let exists: Option<String> = sqlx::query_scalar("SELECT id FROM api_keys WHERE id = $1")
            .bind(key_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        match exists {
            Some(_) => Ok(()),
            None => Err(Error::new(
                ErrorKind::NotFound,
                format!("no key with id `{key_id}`"),
            )),
        }
    }

    /// The keys of the user `user_id`, revoked ones included, oldest first.
    pub async fn list_keys(&self, user_id: &str) -> Result<Vec<KeyInfo>> {
        let rows = sqlx::query(
            "SELECT id, user_id, name, prefix, created_at, revoked_at FROM api_keys
             WHERE user_id = $1 ORDER BY created_at, id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(key_from_row)
            .collect::<sqlx::Result<_>>()
            .map_err(db_error)
    }

    /// Who `key` belongs to, or `None` for a malformed, unknown or revoked key. A malformed key
    /// is turned away without a database query ([`is_well_formed_key`]).
    pub async fn authenticate(&self, key: &str) -> Result<Option<AuthenticatedUser>> {
        if !is_well_formed_key(key) {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT k.id AS key_id, u.id AS user_id, u.name AS name, u.plan AS plan
             FROM api_keys k JOIN users u ON u.id = k.user_id
             WHERE k.key_hash = $1 AND k.revoked_at IS NULL",
        )
        .bind(key_hash(key))
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        let Some(row) = row else { return Ok(None) };
        let user = (|| {
            Ok::<_, sqlx::Error>(AuthenticatedUser {
                user_id: row.try_get("user_id")?,
                name: row.try_get("name")?,
                plan: row.try_get("plan")?,
                key_id: row.try_get("key_id")?,
            })
        })()
        .map_err(db_error)?;
        Ok(Some(user))
    }
}

/// Counts one change every replica's key and plan caches must drop (see
/// [`Store::auth_epoch`]), in the transaction that makes it.
async fn bump_auth_epoch(tx: &mut crate::db::Tx) -> Result<()> {
    sqlx::query("UPDATE auth_changes SET epoch = epoch + 1 WHERE id = 1")
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    Ok(())
}

impl Store {
    /// How many key revocations and plan changes the database has seen. A process that caches
    /// keys or plans polls it (a single-row read) and drops its caches when it moves, so a change
    /// made anywhere (another replica, `gateway admin`) applies everywhere within one poll.
    pub async fn auth_epoch(&self) -> Result<i64> {
        sqlx::query_scalar("SELECT epoch FROM auth_changes WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)
    }

    /// Drops every remembered user plan (another process changed one), and gives back every
    /// lease, sized to the plans as they were (in a task: needs a Tokio runtime when the store
    /// has a journal).
    pub fn forget_plans(&self) {
        self.auth.next_generation();
        self.plan_cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
        if self.ledger.is_some()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let store = self.clone();
            runtime.spawn(async move { store.release_user(None).await });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_well_formed() {
        let key = random_secret("gw_", 40).unwrap();
        assert!(is_well_formed_key(&key));
        assert_ne!(key, random_secret("gw_", 40).unwrap());
        for bad in [
            "",
            "gw_",
            "sk_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "gw_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "gw_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "gw_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-",
            "gw_ääääääääääääääääääää",
        ] {
            assert!(!is_well_formed_key(bad), "{bad}");
        }
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            key_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn base62_uses_every_character() {
        for s in [
            random_id("", 5_000).unwrap(),
            random_secret("", 5_000).unwrap(),
        ] {
            assert_eq!(s.len(), 5_000);
            for &c in BASE62 {
                assert!(s.as_bytes().contains(&c), "{}", c as char);
            }
        }
    }

    #[test]
    fn ids_are_their_prefix_and_random_characters() {
        let id = random_id("res_", 20).unwrap();
        assert_eq!(id.len(), 24);
        assert!(id.starts_with("res_"));
        assert!(id[4..].bytes().all(|b| BASE62.contains(&b)), "{id}");
        let key = random_secret(KEY_PREFIX, KEY_RANDOM_CHARS).unwrap();
        assert!(key.starts_with(KEY_PREFIX) && key.len() == KEY_PREFIX.len() + KEY_RANDOM_CHARS);
    }

    #[test]
    fn ids_drawn_from_the_pool_differ_across_refills() {
        // 20 characters take about 21 bytes: 1,000 ids refill the 256-byte pool many times.
        let ids: std::collections::HashSet<String> =
            (0..1_000).map(|_| random_id("res_", 20).unwrap()).collect();
        assert_eq!(ids.len(), 1_000);
        let taken = RANDOM.with_borrow(|pool| pool.bytes[..pool.next].iter().all(|&b| b == 0));
        assert!(taken, "bytes handed out are zeroed in the pool");
    }
}
