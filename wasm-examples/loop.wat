;; loop — the smallest command that never ends.
;;
;; Demonstrates: deadlines and CPU limits on guests that never call the host.
;; `_start` spins in a tight loop without a single import, so only epoch
;; interruption (activeDeadlineSeconds, deletion, a CPU limit) can stop it.
;; The runtime compiles .wat itself (wasmtime's `wat` feature); build.sh only
;; copies this file to build/.
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $forever
      (br $forever))))
