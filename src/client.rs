//! The server options the command-line clients share (`--url`, `--api-key`, `--tenant`), and
//! the `sawmill-client` client they make.

use sawmill_client::{Client, ClientConfig};

/// Where the server is and how to authenticate.
#[derive(clap::Args, Clone, Debug)]
pub struct ServerArgs {
    /// Server URL.
    #[arg(long, env = "SAWMILL_URL", default_value = "http://127.0.0.1:7480")]
    pub url: String,
    /// API key, sent as `Authorization: Bearer <key>`.
    #[arg(long, env = "SAWMILL_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Tenant to act for, with an operator key (sent as `X-Sawmill-Tenant`); a tenant key
    /// always acts for its own tenant.
    #[arg(long, env = "SAWMILL_TENANT")]
    pub tenant: Option<String>,
}

impl ServerArgs {
    /// The client's settings: this server, key and tenant, the default timeouts.
    pub fn config(&self) -> ClientConfig {
        ClientConfig {
            api_key: self.api_key.clone(),
            tenant: self.tenant.clone(),
            ..ClientConfig::new(self.url.clone())
        }
    }

    /// A client bound to the server.
    pub fn client(&self) -> anyhow::Result<Client> {
        Ok(Client::new(&self.config())?)
    }
}
