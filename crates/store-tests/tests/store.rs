//! The store test suite, written once against `engram_core::Store` and run on every
//! engine: each `check_x` becomes `sqlite_x` and `postgres_x`. PostgreSQL runs need
//! `TEST_DATABASE_URL` (a superuser URL); each test gets a database of its own.

#[path = "store/agree.rs"]
mod agree;
#[path = "store/clone.rs"]
mod clone;
#[path = "store/common.rs"]
mod common;
#[path = "store/concurrency.rs"]
mod concurrency;
#[path = "store/embeddings.rs"]
mod embeddings;
#[path = "store/filter_props.rs"]
mod filter_props;
#[path = "store/filters.rs"]
mod filters;
#[path = "store/members.rs"]
mod members;
#[path = "store/messages.rs"]
mod messages;
#[path = "store/pocketpaw.rs"]
mod pocketpaw;
#[path = "store/purge_plan.rs"]
mod purge_plan;
#[path = "store/queue.rs"]
mod queue;
#[path = "store/queue_status.rs"]
mod queue_status;
#[path = "store/resources.rs"]
mod resources;
#[path = "store/reuse.rs"]
mod reuse;
#[path = "store/search.rs"]
mod search;
#[path = "store/sessions.rs"]
mod sessions;

macro_rules! on_both_engines {
    ($($module:ident :: $check:ident),* $(,)?) => {
        pastey::paste! {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn [<sqlite_ $check>]() {
                    engram_store_tests::on_sqlite($module::[<check_ $check>]).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn [<postgres_ $check>]() {
                    engram_store_tests::on_postgres($module::[<check_ $check>]).await;
                }
            )*
        }
    };
}

on_both_engines! {
    search::common_words_rank_the_newest,
    embeddings::embeddings_bind_the_model,
    embeddings::embedding_work_never_resurrects,
    resources::workspace_get_or_create,
    resources::peer_get_or_create,
    resources::peer_cards,
    sessions::session_get_or_create,
    sessions::list_ordering_and_pagination,
    sessions::peer_sessions,
    filters::big_integers,
    filters::peer_filters,
    filters::session_filters,
    filters::message_filters,
    filters::filter_on_unknown_workspace,
    members::session_members,
    members::member_config,
    members::observer_limit,
    messages::messages_create_and_list,
    messages::message_get_and_update,
    messages::recent_messages_budget,
    messages::recent_messages_long_session,
    clone::clone_session,
    concurrency::concurrent_message_creation,
    concurrency::concurrent_get_or_create,
    queue::prune_done_jobs,
    queue::writes_that_queue_jobs_wake_the_workers,
    queue::delete_session,
    queue::claim_order_and_leases,
    queue::dead_letter_rerun,
    queue::fail_and_retry,
    queue::purge_session,
    queue::purge_resumes,
    queue::purge_refuses_live_session,
    queue::queue_depth,
    queue_status::work_status,
    queue_status::defer_keeps_the_attempt,
    reuse::session_ids_never_reused,
    reuse::workspace_ids_never_reused,
    pocketpaw::pocketpaw_import,
    pocketpaw::pocketpaw_list_and_search,
}
