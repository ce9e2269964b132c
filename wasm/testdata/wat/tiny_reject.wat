;; tiny_reject.wat: like tiny_v1, but ttp_configure rejects the first rule of the request
;; with the message "threshold missing" (and answers {} to a request without rules).
;; Hand-written ttp plugin, ABI v1 (abi/ABI.md). Assembled by build.sh into tiny_reject.wasm.
;;
;; Memory layout:
;;   0x0100  configure reply
;;   0x0110  pieces of the rejection reply
;;   0x0200  tag reply (binary, ABI.md "Reply")
;;   0x0400  manifest, NUL-terminated JSON (ttp_describe measures it)
;;   0x0800  rejection reply, assembled per call (at most 0x0800 bytes)
;;   0x1000  input buffer handed out by ttp_alloc, grown on demand
(module
  (memory (export "memory") 1)

  ;; Manifest.
  (data (i32.const 0x0400) "{\"abi\":1,\"name\":\"tiny\",\"version\":\"1.0.0\",\"rule_kinds\":[\"lifter:tiny_\"],\"kinds\":[{\"source_kind\":\"command\",\"fields\":[\"payload.command_text\"]},{\"source_kind\":\"auth\",\"fields\":[\"payload.username\"]}],\"evidence_keys\":[\"marker\"]}\00")
  (data (i32.const 0x0100) "{}")
  ;; Tag reply, 28 bytes:
  ;;   header: version 1, status 0 (ok), reserved 0, D = 1 draft (u32)
  ;;   draft:  rule u16 0, emit u8 0, E = 1 evidence entry (u8), scale f64 1.0
  ;;   evidence: key 0 ("marker"), tag 4 (string), u32 length 2, "v1"
  (data (i32.const 0x0200)
    "\01\00\00\00" "\01\00\00\00"
    "\00\00" "\00" "\01" "\00\00\00\00\00\00\f0\3f"
    "\00" "\04" "\02\00\00\00" "v1")

  ;; Pieces of the rejection reply; the first rule's id goes between them.
  (data (i32.const 0x0110) "{\"rejected\":[{\"rule\":\"\00")
  (data (i32.const 0x0140) "\",\"message\":\"threshold missing\"}]}\00")

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

  ;; Copy $n bytes from $src to $dst; returns $dst + $n.
  (func $copy (param $dst i32) (param $src i32) (param $n i32) (result i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        (i32.store8 (local.get $dst) (i32.load8_u (local.get $src)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 1)))
        (local.set $src (i32.add (local.get $src) (i32.const 1)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $dst))

  ;; Rejects the first rule of the request, whatever its params:
  ;;   {"rejected":[{"rule":"<id>","message":"threshold missing"}]}
  ;; The id is the value of the first "id" key: the host encodes abi.ConfigureRequest, whose
  ;; rules start with "id". A request without rules (or with an id that is empty, holds a
  ;; backslash or is over 1024 bytes) gets {}: there is nothing to reject.
  ;; The reply is assembled at 0x0800, below the input buffer.
  (func (export "ttp_configure") (param $ptr i32) (param $len i32) (result i64)
    (local $i i32) (local $end i32) (local $start i32) (local $c i32) (local $out i32)
    (local.set $i (local.get $ptr))
    (local.set $end (i32.add (local.get $ptr) (local.get $len)))
    ;; find the four bytes "id" (with quotes): 0x22 0x69 0x64 0x22
    (block $found
      (loop $scan
        (if (i32.gt_u (i32.add (local.get $i) (i32.const 4)) (local.get $end))
          (then (return (call $ptrlen (i32.const 0x0100) (i32.const 2)))))
        (br_if $found (i32.eq (i32.load (local.get $i)) (i32.const 0x22646922)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $scan)))
    (local.set $i (i32.add (local.get $i) (i32.const 4)))
    ;; skip blanks and the colon up to the opening quote of the value
    (block $open
      (loop $skip
        (if (i32.ge_u (local.get $i) (local.get $end))
          (then (return (call $ptrlen (i32.const 0x0100) (i32.const 2)))))
        (local.set $c (i32.load8_u (local.get $i)))
        (br_if $open (i32.eq (local.get $c) (i32.const 0x22)))
        (if (i32.eqz
              (i32.or (i32.or (i32.eq (local.get $c) (i32.const 0x3a))   ;; ':'
                              (i32.eq (local.get $c) (i32.const 0x20)))  ;; ' '
                      (i32.or (i32.eq (local.get $c) (i32.const 0x0a))   ;; '\n'
                              (i32.or (i32.eq (local.get $c) (i32.const 0x0d))
                                      (i32.eq (local.get $c) (i32.const 0x09))))))
          (then (return (call $ptrlen (i32.const 0x0100) (i32.const 2)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $skip)))
    (local.set $i (i32.add (local.get $i) (i32.const 1)))
    (local.set $start (local.get $i))
    ;; the id runs to the closing quote
    (block $close
      (loop $value
        (if (i32.ge_u (local.get $i) (local.get $end))
          (then (return (call $ptrlen (i32.const 0x0100) (i32.const 2)))))
        (local.set $c (i32.load8_u (local.get $i)))
        (br_if $close (i32.eq (local.get $c) (i32.const 0x22)))
        (if (i32.eq (local.get $c) (i32.const 0x5c))                     ;; backslash
          (then (return (call $ptrlen (i32.const 0x0100) (i32.const 2)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $value)))
    (local.set $len (i32.sub (local.get $i) (local.get $start)))
    (if (i32.or (i32.eqz (local.get $len)) (i32.gt_u (local.get $len) (i32.const 1024)))
      (then (return (call $ptrlen (i32.const 0x0100) (i32.const 2)))))
    (local.set $out (call $copy (i32.const 0x0800) (i32.const 0x0110) (call $strlen (i32.const 0x0110))))
    (local.set $out (call $copy (local.get $out) (local.get $start) (local.get $len)))
    (local.set $out (call $copy (local.get $out) (i32.const 0x0140) (call $strlen (i32.const 0x0140))))
    (call $ptrlen (i32.const 0x0800) (i32.sub (local.get $out) (i32.const 0x0800))))

  ;; One draft for every record, whatever it holds.
  (func (export "ttp_tag") (param $ptr i32) (param $len i32) (result i64)
    (call $ptrlen (i32.const 0x0200) (i32.const 28)))
)
