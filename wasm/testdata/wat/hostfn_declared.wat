;; hostfn_declared.wat: tiny_v1 that imports the host's text functions (module "ttp") and
;; declares the capability ttp_host_v1; ttp_tag hands them an out-of-range pointer and an
;; unknown set, traps unless they answer -2 and -4, then lower-cases its input in place.
;; Assembled by build.sh.
(module
  (import "ttp" "lower" (func $lower (param i32 i32 i32) (result i32)))
  (import "ttp" "lits_scan" (func $lits_scan (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)

  ;; Manifest.
  (data (i32.const 0x0400) "{\"abi\":1,\"name\":\"tiny\",\"version\":\"1.0.0\",\"rule_kinds\":[\"lifter:tiny_\"],\"kinds\":[{\"source_kind\":\"command\",\"fields\":[\"payload.command_text\"]},{\"source_kind\":\"auth\",\"fields\":[\"payload.username\"]}],\"evidence_keys\":[\"marker\"],\"capabilities\":[\"ttp_host_v1\"]}\00")
  (data (i32.const 0x0100) "{}")
  ;; Tag reply, 28 bytes:
  ;;   header: version 1, status 0 (ok), reserved 0, D = 1 draft (u32)
  ;;   draft:  rule u16 0, emit u8 0, E = 1 evidence entry (u8), scale f64 1.0
  ;;   evidence: key 0 ("marker"), tag 4 (string), u32 length 2, "v1"
  (data (i32.const 0x0200)
    "\01\00\00\00" "\01\00\00\00"
    "\00\00" "\00" "\01" "\00\00\00\00\00\00\f0\3f"
    "\00" "\04" "\02\00\00\00" "v1")

  ;; ptrlen packs a pointer and a length: ptr << 32 | len.
  (func $ptrlen (param $ptr i32) (param $len i32) (result i64)
    (i64.or
      (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
      (i64.extend_i32_u (local.get $len))))

  ;; Length of the NUL-terminated string at $p.
  (func $strlen (param $p i32) (result i32)
    (local $q i32)
    (local.set $q (local.get $p))
    (block $done
      (loop $next
        (br_if $done (i32.eqz (i32.load8_u (local.get $q))))
        (local.set $q (i32.add (local.get $q) (i32.const 1)))
        (br $next)))
    (i32.sub (local.get $q) (local.get $p)))

  ;; Version marker: never called.
  (func (export "ttp_abi_v1"))

  ;; Fixed-buffer allocator: always returns 0x1000 and grows memory until 0x1000 + len fits
  ;; (traps when memory cannot grow). It keeps no state, so every instance answers alike, and
  ;; the buffer stays valid until the next call.
  (func (export "ttp_alloc") (param $len i32) (result i32)
    (local $need i64) (local $have i64)
    (local.set $need (i64.add (i64.const 0x1000) (i64.extend_i32_u (local.get $len))))
    (local.set $have (i64.shl (i64.extend_i32_u (memory.size)) (i64.const 16)))
    (if (i64.gt_u (local.get $need) (local.get $have))
      (then
        (if (i32.eq
              (memory.grow
                (i32.wrap_i64
                  (i64.shr_u
                    (i64.add (i64.sub (local.get $need) (local.get $have)) (i64.const 0xffff))
                    (i64.const 16))))
              (i32.const -1))
          (then (unreachable)))))
    (i32.const 0x1000))

  ;; The manifest as ptrlen.
  (func (export "ttp_describe") (result i64)
    (call $ptrlen (i32.const 0x0400) (call $strlen (i32.const 0x0400))))

  ;; Every rule is usable: reply {}.
  (func (export "ttp_configure") (param $ptr i32) (param $len i32) (result i64)
    (call $ptrlen (i32.const 0x0100) (i32.const 2)))

  ;; One draft for every record, whatever it holds.
  (func (export "ttp_tag") (param $ptr i32) (param $len i32) (result i64)
    ;; A pointer outside memory is an answer (-2), not a trap; an unknown set is -4.
    (if (i32.ne (call $lower (i32.const 0xfffffff0) (i32.const 100) (i32.const 0)) (i32.const -2))
      (then (unreachable)))
    (if (i32.ne (call $lits_scan (i32.const 3) (local.get $ptr) (local.get $len) (i32.const 0x8000) (i32.const 4)) (i32.const -4))
      (then (unreachable)))
    (drop (call $lower (local.get $ptr) (local.get $len) (local.get $ptr)))
    (call $ptrlen (i32.const 0x0200) (i32.const 28)))
)
