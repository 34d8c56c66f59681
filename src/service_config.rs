//! Service connections (`service_config`): the Plex server, Overseerr and Uptime Kuma, each a
//! URL, an API key (encrypted at rest), an enabled flag and options.
//!
//! The `services.*` configuration keys seed the table on first start only; afterwards the admin's
//! settings in the database win.

use rusqlite::{Connection, OptionalExtension};

use crate::config::{Config, ServiceSeed};
use crate::crypto::Cipher;
use crate::error::AppResult;

/// The services MediaNest connects to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceName {
    Plex,
    Overseerr,
    UptimeKuma,
}

impl ServiceName {
    pub const ALL: [ServiceName; 3] = [Self::Plex, Self::Overseerr, Self::UptimeKuma];

    /// The stored name (`plex`, `overseerr`, `uptime_kuma`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plex => "plex",
            Self::Overseerr => "overseerr",
            Self::UptimeKuma => "uptime_kuma",
        }
    }

    /// The name people read. The `overseerr` service is Seerr (or the older Overseerr, which the
    /// health check names once it has told them apart).
    pub fn display_name(self) -> &'static str {
        match self {
            Self::Plex => "Plex",
            Self::Overseerr => "Seerr",
            Self::UptimeKuma => "Uptime Kuma",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|n| n.as_str() == s)
    }

    fn seed(self, config: &Config) -> &ServiceSeed {
        match self {
            Self::Plex => &config.services.plex,
            Self::Overseerr => &config.services.overseerr,
            Self::UptimeKuma => &config.services.uptime_kuma,
        }
    }
}

/// A service connection with its secret decrypted (never serialize this as is).
#[derive(Clone, PartialEq)]
pub struct ServiceConfig {
    pub name: ServiceName,
    pub url: Option<String>,
    pub api_key: Option<String>,
    pub enabled: bool,
    pub options: serde_json::Value,
    pub updated_at: i64,
}

impl std::fmt::Debug for ServiceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceConfig")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("api_key", &self.api_key.as_ref().map(|_| "****"))
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

impl ServiceConfig {
    /// Usable: enabled and with a URL.
    pub fn is_usable(&self) -> bool {
        self.enabled && self.url.as_deref().is_some_and(|u| !u.is_empty())
    }
}

/// Writes the `services.*` seeds when the table has no row for a service yet (first start).
pub fn seed(conn: &Connection, config: &Config, cipher: &Cipher, now_ms: i64) -> AppResult<()> {
    for name in ServiceName::ALL {
        let exists: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM service_config WHERE service_name = ?1)",
            [name.as_str()],
            |r| r.get(0),
        )?;
        if exists {
            continue;
        }
        let seed = name.seed(config);
        let api_key = seed
            .api_key
            .as_ref()
            .map(|k| cipher.encrypt(k.expose()))
            .transpose()?;
        let options = match &seed.slug {
            Some(slug) => serde_json::json!({ "slug": slug }),
            None => serde_json::json!({}),
        };
        conn.execute(
            "INSERT INTO service_config (id, service_name, service_url, api_key, enabled,
                                         config_data, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            rusqlite::params![
                uuid::Uuid::now_v7().to_string(),
                name.as_str(),
                seed.url,
                api_key,
                seed.enabled && seed.url.is_some(),
                options.to_string(),
                now_ms
            ],
        )?;
    }
    Ok(())
}

/// Reads one service's connection, decrypting its key.
pub fn load(
    conn: &Connection,
    name: ServiceName,
    cipher: &Cipher,
) -> AppResult<Option<ServiceConfig>> {
    let row = conn
        .prepare_cached(
            "SELECT service_url, api_key, enabled, config_data, updated_at
             FROM service_config WHERE service_name = ?1",
        )?
        .query_row([name.as_str()], |r| {
            Ok((
                r.get::<_, Option<String>>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, bool>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })
        .optional()?;
    let Some((url, api_key, enabled, options, updated_at)) = row else {
        return Ok(None);
    };
    let api_key = api_key.map(|k| cipher.decrypt(&k)).transpose()?;
    Ok(Some(ServiceConfig {
        name,
        url,
        api_key,
        enabled,
        options: serde_json::from_str(&options).unwrap_or_else(|_| serde_json::json!({})),
        updated_at,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::Secret;

    #[test]
    fn seeds_once_and_encrypts_keys() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::db::migrations::apply(&mut conn).unwrap();
        let key = crate::data_dir::SecretKey::from_base64(&base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            [3u8; 32],
        ))
        .unwrap();
        let cipher = Cipher::new(&key);
        let mut config = Config::default();
        config.services.plex.url = Some("http://127.0.0.1:32400".into());
        config.services.plex.api_key = Some(Secret::new("plex-server-token"));
        config.services.uptime_kuma.slug = Some("home".into());
        seed(&conn, &config, &cipher, 1).unwrap();

        let stored: String = conn
            .query_row(
                "SELECT api_key FROM service_config WHERE service_name = 'plex'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(!stored.contains("plex-server-token"));
        let plex = load(&conn, ServiceName::Plex, &cipher).unwrap().unwrap();
        assert_eq!(plex.api_key.as_deref(), Some("plex-server-token"));
        assert!(plex.is_usable());
        assert!(!format!("{plex:?}").contains("plex-server-token"));
        let kuma = load(&conn, ServiceName::UptimeKuma, &cipher)
            .unwrap()
            .unwrap();
        assert_eq!(kuma.options["slug"], "home");
        assert!(!kuma.is_usable(), "no URL: not usable");

        // A second start with other seeds changes nothing.
        config.services.plex.url = Some("http://10.0.0.2:32400".into());
        seed(&conn, &config, &cipher, 2).unwrap();
        let plex = load(&conn, ServiceName::Plex, &cipher).unwrap().unwrap();
        assert_eq!(plex.url.as_deref(), Some("http://127.0.0.1:32400"));
    }
}
