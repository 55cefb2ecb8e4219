//! baton — a Git-aware delegation assistant.
//!
//! A run is a straight line of stages, one module each:
//! [`handoff`] (what) → [`worktree`] (where) → [`agent`] (do) → [`checklist`] (verify)
//! → [`scope`] (judge) → [`outcome`] (merge, revert, stash or keep), recorded by the
//! [`journal`] and driven by [`run`]; [`recover`] finishes or rolls back what a
//! killed run left in flight. All git access is in [`git`], all child-process
//! control in [`process`], all printing for people in [`ui`], and the command line in
//! [`cli`].

pub mod agent;
pub mod checklist;
pub mod cli;
pub mod config;
pub mod demo;
pub mod doctor;
pub mod duration;
pub mod error;
pub mod events;
pub mod exit;
pub mod git;
pub mod guard;
pub mod handoff;
pub mod init;
pub mod journal;
pub mod model_server;
pub mod outcome;
pub mod process;
pub mod recover;
pub mod report;
pub mod route;
pub mod run;
pub mod scope;
pub mod settings;
pub mod ui;
pub mod workflow;
pub mod worktree;
