//! The tokio runtime children are supervised on. Every child is one task on a
//! runtime (its pipes read by the runtime's I/O driver, its limits by its timers), so
//! baton has no thread per child or per pipe, and a sweep of many runs supervises all
//! of them on one thread ([`Local`]).
//!
//! Synchronous code reaches the async supervisor through [`block_on`], which drives a
//! future on the calling thread with a runtime of that thread's own. A thread that is
//! already driving async work cannot block on more of it (tokio refuses, and it would
//! stall every other task of that thread): [`driving`] tells the callers, which then
//! hand the work to a thread of its own ([`super::run`]); a runtime's blocking
//! threads may block. git work that takes long (a
//! checkout, a snapshot) is moved off a driving thread with [`blocking`], so it stalls
//! no child's supervision: git2 values live and die inside that closure, never across
//! an `.await`.

use std::cell::{Cell, RefCell};
use std::future::Future;

use tokio::runtime::{Builder, Runtime};

/// At most this many threads run git work for the tasks of one runtime at once
/// ([`blocking`]); more wait their turn. With the supervisor's own thread, that bounds
/// baton's threads however many runs a sweep has going.
pub fn blocking_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, 8)
}

thread_local! {
    /// This thread's runtime for [`block_on`], made on first use.
    static OWN: RefCell<Option<Runtime>> = const { RefCell::new(None) };
    /// True while this thread drives a future ([`block_on`], [`Local::run`]).
    static DRIVING: Cell<bool> = const { Cell::new(false) };
}

fn new_runtime() -> std::io::Result<Runtime> {
    Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(blocking_threads())
        .build()
}

/// True when this thread is driving async work: it must not block on a future. (A
/// runtime's blocking threads drive nothing and may.)
pub fn driving() -> bool {
    DRIVING.get()
}

/// Marks this thread as driving async work while it lives.
struct Driving(bool);

impl Driving {
    fn enter() -> Driving {
        Driving(DRIVING.replace(true))
    }
}

impl Drop for Driving {
    fn drop(&mut self) {
        DRIVING.set(self.0);
    }
}

/// Drives `future` to its end on this thread. A thread that is [`driving`] already
/// gets an error rather than tokio's panic: its caller should have awaited instead.
pub fn block_on<F: Future>(future: F) -> std::io::Result<F::Output> {
    if driving() {
        return Err(std::io::Error::other(
            "baton cannot wait here for a child: this thread supervises others (a bug: please report it)",
        ));
    }
    let runtime = OWN.with(|own| -> std::io::Result<Option<Runtime>> {
        // Taken out while it runs, so a nested call (which `driving` forbids) could
        // not borrow it twice.
        let mut own = own.borrow_mut();
        match own.take() {
            Some(rt) => Ok(Some(rt)),
            None => new_runtime().map(Some),
        }
    })?;
    let Some(runtime) = runtime else {
        return Err(std::io::Error::other("no runtime"));
    };
    let out = {
        let _driving = Driving::enter();
        runtime.block_on(future)
    };
    OWN.with(|own| *own.borrow_mut() = Some(runtime));
    Ok(out)
}

/// Runs `work` on the runtime's blocking threads and waits for it without holding up
/// the other tasks of this thread. Without a runtime (a plain thread), it runs here.
pub async fn blocking<T, F>(work: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    if tokio::runtime::Handle::try_current().is_err() {
        return work();
    }
    match tokio::task::spawn_blocking(work).await {
        Ok(out) => out,
        // The closure panicked: the panic goes on here, as if it had run in place.
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("blocking work was cancelled: {e}"),
        },
    }
}

/// One thread's runtime for many tasks that need not be `Send` (a sweep's runs):
/// they all run on the thread that calls [`Local::run`], their git work on at most
/// [`blocking_threads`] more.
pub struct Local {
    runtime: Runtime,
    set: tokio::task::LocalSet,
}

impl Local {
    pub fn new() -> std::io::Result<Local> {
        Ok(Local {
            runtime: new_runtime()?,
            set: tokio::task::LocalSet::new(),
        })
    }

    /// Drives `future` (and every task it spawns with `tokio::task::spawn_local`) on
    /// this thread until `future` is done.
    pub fn run<F: Future>(&self, future: F) -> F::Output {
        let _driving = Driving::enter();
        self.runtime.block_on(self.set.run_until(future))
    }
}

/// What [`each`] runs for one item: a future on the thread that drives it.
pub type Work<'a> = std::pin::Pin<Box<dyn Future<Output = ()> + 'a>>;

/// Starts `start(item)` for each item `items` yields, at most `slots` at once, and
/// drives them all in this one task until `items` is closed and every one is done.
/// Unlike spawned tasks they may borrow (the sweep's repository, its observers): a
/// sweep's runs are futures of one task, polled when any of them is woken, so none
/// needs a thread, a `Send` bound or a `'static` lifetime.
pub async fn each<'a, T>(
    items: &mut tokio::sync::mpsc::UnboundedReceiver<T>,
    slots: usize,
    mut start: impl FnMut(T) -> Work<'a>,
) {
    use std::task::Poll;
    let slots = slots.max(1);
    let mut running: Vec<Work<'a>> = Vec::new();
    let mut open = true;
    std::future::poll_fn(|cx| {
        loop {
            let mut moved = false;
            while open && running.len() < slots {
                match items.poll_recv(cx) {
                    Poll::Ready(Some(item)) => {
                        running.push(start(item));
                        moved = true;
                    }
                    Poll::Ready(None) => open = false,
                    Poll::Pending => break,
                }
            }
            let before = running.len();
            running.retain_mut(|work| work.as_mut().poll(cx).is_pending());
            // A finished one frees a slot: take the next item (its receiver has no
            // waker registered while the slots were full).
            moved |= running.len() < before;
            if !open && running.is_empty() {
                return Poll::Ready(());
            }
            if !moved {
                return Poll::Pending;
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blocking_thread_of_a_driving_runtime_can_block_on_a_future_of_its_own() {
        let local = Local::new().unwrap();
        let out = local.run(async {
            assert!(driving());
            blocking(|| {
                // What a setup command run from git work off the supervisor does.
                block_on(async {
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    7
                })
            })
            .await
        });
        assert_eq!(out.unwrap(), 7);
        assert!(!driving());
    }

    #[test]
    fn each_runs_at_most_its_slots_at_once_and_every_item_once() {
        use std::cell::RefCell;
        use std::time::Duration;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
        for i in 0..10 {
            tx.send(i).unwrap();
        }
        drop(tx);
        let (now, most, done) = (RefCell::new(0), RefCell::new(0), RefCell::new(vec![]));
        let local = Local::new().unwrap();
        local.run(each(&mut rx, 3, |i| {
            let (now, most, done) = (&now, &most, &done);
            Box::pin(async move {
                *now.borrow_mut() += 1;
                let n = *now.borrow();
                most.replace_with(|m| (*m).max(n));
                tokio::time::sleep(Duration::from_millis(20)).await;
                *now.borrow_mut() -= 1;
                done.borrow_mut().push(i);
            })
        }));
        let mut done = done.into_inner();
        done.sort();
        assert_eq!(done, (0..10).collect::<Vec<_>>());
        assert_eq!(most.into_inner(), 3);
    }
}
