;; garbage.wat: hostile: ttp_tag returns 64 random-looking bytes that are not a reply (the
;; version byte is 0xa7). The host must find the reply undecodable and fail the call.
;; Hand-written ttp plugin, ABI v1 (abi/ABI.md). Assembled by build.sh into garbage.wasm.
;;
;; Memory layout:
;;   0x0100  configure reply
;;   0x0200  tag reply (binary, ABI.md "Reply")
;;   0x0400  manifest, NUL-terminated JSON (ttp_describe measures it)
;;   0x1000  input buffer handed out by ttp_alloc, grown on demand
(module
  (memory (export "memory") 1)

  ;; Manifest.
  (data (i32.const 0x0400) "{\"abi\":1,\"name\":\"hostile-garbage\",\"version\":\"1.0.0\",\"rule_kinds\":[\"lifter:tiny_\"],\"kinds\":[{\"source_kind\":\"command\",\"fields\":[\"payload.command_text\"]},{\"source_kind\":\"auth\",\"fields\":[\"payload.username\"]}],\"evidence_keys\":[\"marker\"]}\00")
  (data (i32.const 0x0100) "{}")
  ;; 64 bytes of noise; the first byte is not the reply version 1.
  (data (i32.const 0x0200)
    "\a7\3f\d2\91\0c\e8\5b\76\ff\14\c9\2a\88\61\b3\07"
    "\5e\f0\9d\42\1b\ce\73\a5\36\e1\08\9a\d7\6c\4f\b2"
    "\13\fa\85\2e\c1\57\09\bd\64\e3\3a\98\71\0f\d4\ab"
    "\26\8f\c5\5a\e9\30\b7\4c\92\1d\f6\63\0a\cd\78\e5")

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

  ;; The noise at 0x0200 as a reply.
  (func (export "ttp_tag") (param $ptr i32) (param $len i32) (result i64)
    (call $ptrlen (i32.const 0x0200) (i32.const 64)))
)
