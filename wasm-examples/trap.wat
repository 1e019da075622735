;; trap — a command that traps at once.
;;
;; Demonstrates: a guest fault with no WASI at all. `_start` executes
;; `unreachable`, so the instance traps before printing anything; the
;; container must end as failed (Error), never as a clean exit 0.
(module
  (memory (export "memory") 1)
  (func (export "_start")
    unreachable))
