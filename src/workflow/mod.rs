//! Workflows: strategies over the run library ([`crate::run`]). A workflow decides
//! which runs to start, with which plans, and what becomes of their results; every run
//! it starts is a full run (`run::run`: its own worktree, agent, retries, fallback,
//! repair, checks, scope and journal). No workflow copies the driver.
//!
//! - [`sweep`]: `baton sweep TASKS` — a task file (TOML or a Markdown checklist)
//!   resolved into one plan per task before anything starts, N runs at once with
//!   `--on-pass keep` implied, the sweep's journal (`<common dir>/baton/sweeps/<id>/`),
//!   `sweep resume` and `sweep status`;
//! - [`queue`]: the merge queue the sweep lands through — a candidate (or a batch of
//!   them) merged onto the current tip in memory, its checks run on that tree in a
//!   landing worktree, and the branch moved by compare-and-swap from the tip that was
//!   tested. Nothing lands that was not tested as it lands;
//! - [`precommit`]: the git hook (`baton precommit`) — the staged tree checked in a
//!   worktree, a failing one delegated as a run from `Base::Index`, the fix landed in
//!   the index (`Target::Index`); `hook install|uninstall`;
//! - [`commit`]: `baton commit` — a verified commit of the staged tree;
//! - [`compare`]: `baton compare` — one handoff as N candidates at once, the winner by
//!   evidence, every candidate's change kept as a ref;
//! - [`remote`]: `baton worker`, `baton sweep land|status --remote` — a sweep over
//!   machines, git the only coordination point: results pushed as refs, landed by the
//!   same queue, the branch pushed with a lease;
//! - [`pipeline`]: `baton pipeline` — stages in one worktree, a review that decides,
//!   one commit for the whole;
//! - [`manifest`]: `baton sweep plan --emit k8s|github` — a sweep as a Kubernetes
//!   Indexed Job or a GitHub Actions workflow, one `baton worker` per task (pure:
//!   text in, text out).

pub mod commit;
pub mod compare;
pub mod manifest;
pub mod pipeline;
pub mod precommit;
pub mod queue;
pub mod remote;
pub mod sweep;

pub use sweep::SweepError;
