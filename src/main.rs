//! The `scimd` binary: parses the command line and calls into the library.

use clap::{Parser, Subcommand};
use scimd::app;
use scimd::config::{ServeConfig, StoreConfig};

/// mimalloc instead of glibc's malloc: a request allocates and frees many small JSON values,
/// and glibc's allocator took about a fifth of the server's CPU under load (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "scimd", version, about = "SCIM 2.0 user-provisioning server")]
struct Cli {
    #[command(flatten)]
    store: StoreConfig,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server.
    Serve(Box<ServeConfig>),
    /// Exit 0 when the server on SCIMD_LISTEN answers /healthz (for container health checks).
    Healthcheck {
        #[arg(long, env = "SCIMD_LISTEN", default_value = "127.0.0.1:8080")]
        listen: String,
        /// Set when the server terminates TLS: the check then speaks HTTPS.
        #[arg(long, env = "SCIMD_TLS_CERT")]
        tls_cert: Option<std::path::PathBuf>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Manage organizations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Manage admin keys (the admin API, /admin/v1).
    #[command(subcommand)]
    AdminKey(AdminKeyCommand),
    /// Manage the secrets that sign API keys.
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Print the operators' audit trail (admin API and command line), oldest first, as JSON
    /// lines.
    AdminLog {
        /// Most actions printed.
        #[arg(long, default_value_t = 1000)]
        limit: i64,
    },
    /// Manage user-attribute definitions (keys of urn:omni:params:1.0:UserAttribute).
    #[command(subcommand)]
    UserAttribute(UserAttributeCommand),
    /// Manage SCIM event streams (RFC 9967): push (RFC 8935) or poll (RFC 8936).
    #[command(subcommand)]
    Stream(StreamCommand),
    /// Manage the keys that sign SCIM events.
    #[command(subcommand)]
    EventKey(EventKeyCommand),
    /// Print an organization's change log (or, with --failed, its rejected writes), oldest
    /// first.
    Audit {
        #[arg(long, env = "SCIMD_ORG")]
        org: String,
        /// Only after this log position, or since an RFC 3339 time, or for an age (24h, 7d).
        #[arg(long)]
        since: Option<String>,
        /// Only this resource (a user or group id).
        #[arg(long)]
        resource: Option<String>,
        /// Only changes made with this API key (its id).
        #[arg(long)]
        key: Option<String>,
        /// Rejected write requests instead of changes.
        #[arg(long)]
        failed: bool,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
        /// Most entries printed.
        #[arg(long, default_value_t = 1000)]
        limit: i64,
    },
}

#[derive(Subcommand)]
enum OrgCommand {
    /// Create an organization.
    Create { slug: String },
    /// List organizations with their users, groups and keys.
    List,
    /// Show one organization (and, while it is being deleted, the progress).
    Get { slug: String },
    /// Rename an organization (its keys keep working).
    Rename { slug: String, new_slug: String },
    /// Delete an organization: its keys stop working at once; its data is removed in
    /// batches, here (printing progress) or, with --background, by a running server.
    Delete {
        slug: String,
        #[arg(long)]
        background: bool,
    },
}

#[derive(Subcommand)]
enum AdminKeyCommand {
    /// Create an admin key and print only the token on stdout.
    Create {
        #[arg(long)]
        name: Option<String>,
        /// Lifetime such as 90d, 12h, 30m; keys without one last until revoked.
        #[arg(long)]
        expires_in: Option<String>,
    },
    /// List admin keys.
    List,
    /// Revoke an admin key by id.
    Revoke { key_id: String },
}

#[derive(Subcommand)]
enum SecretCommand {
    /// Create a secret that signs every key created from now on (older keys keep working).
    Rotate,
    /// List the secrets with the live keys each signs.
    List,
    /// Retire a secret: the keys it signed stop working.
    Retire {
        id: String,
        /// Retire it even though it still signs live keys.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Create a key and print only the token on stdout.
    Create {
        #[arg(long, env = "SCIMD_ORG")]
        org: String,
        /// A personal access token (refused by SCIM endpoints) instead of an organization key.
        #[arg(long)]
        personal: bool,
        #[arg(long)]
        name: Option<String>,
        /// Lifetime such as 90d, 12h, 30m; keys without one last until revoked.
        #[arg(long)]
        expires_in: Option<String>,
    },
    /// List an organization's keys.
    List {
        #[arg(long, env = "SCIMD_ORG")]
        org: String,
    },
    /// Revoke a key by id.
    Revoke { key_id: String },
}

#[derive(Subcommand)]
enum StreamCommand {
    /// Create a stream: SETs pushed to a URL, or polled with a token printed once.
    Create {
        #[arg(long, env = "SCIMD_ORG")]
        org: String,
        /// Push every SET to this http:// or https:// URL.
        #[arg(long, conflicts_with = "poll", required_unless_present = "poll")]
        push: Option<String>,
        /// Let the receiver poll for SETs instead.
        #[arg(long)]
        poll: bool,
        /// Events to deliver, comma-separated: create, put, patch, delete, activate,
        /// deactivate (default: all).
        #[arg(long)]
        events: Option<String>,
        /// Full events (the request's data, never a password) instead of notices (the
        /// changed attribute names).
        #[arg(long)]
        full: bool,
        /// An Authorization header value sent with every push (kept secret, never listed).
        #[arg(long, requires = "push")]
        auth_header: Option<String>,
    },
    /// List an organization's streams: kind, state, target, position, delivered, last error.
    List {
        #[arg(long, env = "SCIMD_ORG")]
        org: String,
    },
    /// Delete a stream by id.
    Delete { stream_id: String },
}

#[derive(Subcommand)]
enum EventKeyCommand {
    /// Sign with a new key from now on; the previous ones stay published for a week.
    Rotate,
}

#[derive(Subcommand)]
enum UserAttributeCommand {
    /// Define a user attribute key for an organization.
    Create {
        #[arg(long, env = "SCIMD_ORG")]
        org: String,
        key: String,
    },
    /// List an organization's user attribute keys.
    List {
        #[arg(long, env = "SCIMD_ORG")]
        org: String,
    },
    /// Delete a user attribute key that no user carries.
    Delete {
        #[arg(long, env = "SCIMD_ORG")]
        org: String,
        key: String,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let _log_writer = match scimd::telemetry::init() {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("scimd: error: the log writer thread did not start: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line, no backtrace: the chain of causes joined.
            eprintln!("scimd: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let no_cache = std::time::Duration::ZERO;
    match cli.command {
        Command::Serve(config) => app::serve(&cli.store, &config).await?,
        Command::Healthcheck { listen, tls_cert } => match tls_cert {
            Some(_) => app::healthcheck_tls(&listen).await?,
            None => app::healthcheck(&listen).await?,
        },
        Command::Migrate => {
            app::open(&cli.store, no_cache).await?;
            eprintln!("scimd: migrations applied");
        }
        Command::Org(command) => {
            let backend = app::open(&cli.store, no_cache).await?;
            match command {
                OrgCommand::Create { slug } => {
                    println!("{}", app::create_org(&backend, &slug).await?)
                }
                OrgCommand::List => {
                    for org in app::list_orgs(&backend).await? {
                        println!("{}", app::describe_org(&org));
                    }
                }
                OrgCommand::Get { slug } => {
                    println!(
                        "{}",
                        app::describe_org(&app::get_org(&backend, &slug).await?)
                    )
                }
                OrgCommand::Rename { slug, new_slug } => {
                    app::rename_org(&backend, &slug, &new_slug).await?
                }
                OrgCommand::Delete { slug, background } => {
                    app::delete_org(&backend, &slug, background).await?
                }
            }
        }
        Command::AdminKey(command) => {
            let backend = app::open(&cli.store, no_cache).await?;
            match command {
                AdminKeyCommand::Create { name, expires_in } => {
                    println!(
                        "{}",
                        app::create_admin_key(&backend, name, expires_in.as_deref()).await?
                    );
                }
                AdminKeyCommand::List => {
                    for key in app::list_admin_keys(&backend).await? {
                        println!("{}", app::describe_key(&key));
                    }
                }
                AdminKeyCommand::Revoke { key_id } => {
                    app::revoke_admin_key(&backend, &key_id).await?
                }
            }
        }
        Command::Secret(command) => {
            let backend = app::open(&cli.store, no_cache).await?;
            match command {
                SecretCommand::Rotate => {
                    let id = app::rotate_secret(&backend).await?;
                    eprintln!(
                        "scimd: new keys are signed with secret {id}; older keys keep working until their secret is retired"
                    );
                    println!("{id}");
                }
                SecretCommand::List => {
                    for secret in app::list_secrets(&backend).await? {
                        println!("{}", app::describe_secret(&secret));
                    }
                }
                SecretCommand::Retire { id, force } => {
                    let invalidated = app::retire_secret(&backend, &id, force).await?;
                    eprintln!("scimd: secret {id} retired; {invalidated} live key(s) invalidated");
                }
            }
        }
        Command::AdminLog { limit } => {
            let backend = app::open(&cli.store, no_cache).await?;
            print!("{}", app::admin_log(&backend, limit).await?);
        }
        Command::Key(command) => {
            let backend = app::open(&cli.store, no_cache).await?;
            match command {
                KeyCommand::Create {
                    org,
                    personal,
                    name,
                    expires_in,
                } => {
                    let token =
                        app::create_key(&backend, &org, personal, name, expires_in.as_deref())
                            .await?;
                    println!("{token}");
                }
                KeyCommand::List { org } => {
                    for key in app::list_keys(&backend, &org).await? {
                        println!("{}", app::describe_key(&key));
                    }
                }
                KeyCommand::Revoke { key_id } => app::revoke_key(&backend, &key_id).await?,
            }
        }
        Command::Stream(command) => {
            let backend = app::open(&cli.store, no_cache).await?;
            match command {
                StreamCommand::Create {
                    org,
                    push,
                    poll: _,
                    events,
                    full,
                    auth_header,
                } => {
                    let request = app::StreamRequest {
                        org,
                        push,
                        events,
                        full,
                        auth_header,
                    };
                    let (stream, token) = app::create_stream(&backend, &request).await?;
                    println!("{}", stream.id);
                    if let Some(token) = token {
                        eprintln!(
                            "scimd: poll with POST /events/streams/{}/poll and this token \
                             (shown once):",
                            stream.id
                        );
                        println!("{token}");
                    }
                }
                StreamCommand::List { org } => {
                    for stream in app::list_streams(&backend, &org).await? {
                        println!("{}", app::describe_stream(&stream));
                    }
                }
                StreamCommand::Delete { stream_id } => {
                    app::delete_stream(&backend, &stream_id).await?
                }
            }
        }
        Command::EventKey(EventKeyCommand::Rotate) => {
            let backend = app::open(&cli.store, no_cache).await?;
            println!("{}", app::rotate_event_key(&backend).await?);
        }
        Command::Audit {
            org,
            since,
            resource,
            key,
            failed,
            json,
            limit,
        } => {
            let backend = app::open(&cli.store, no_cache).await?;
            let request = app::AuditRequest {
                org,
                since,
                resource,
                key,
                failed,
                json,
                limit,
            };
            print!("{}", app::audit(&backend, &request).await?);
        }
        Command::UserAttribute(command) => {
            let backend = app::open(&cli.store, no_cache).await?;
            match command {
                UserAttributeCommand::Create { org, key } => {
                    app::create_user_attribute(&backend, &org, &key).await?
                }
                UserAttributeCommand::List { org } => {
                    for key in app::list_user_attributes(&backend, &org).await? {
                        println!("{key}");
                    }
                }
                UserAttributeCommand::Delete { org, key } => {
                    app::delete_user_attribute(&backend, &org, &key).await?
                }
            }
        }
    }
    Ok(())
}
