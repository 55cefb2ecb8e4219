pub mod commit;
pub mod precommit;
