#!/usr/bin/env python3
"""Regenerates ../src/schema.txt, the message table the decoder walks.

Inputs are git checkouts of k8s.io/api and k8s.io/apimachinery (read with
`git show`, so bare repositories work):

    gen/gen_schema.py /path/to/api.git /path/to/apimachinery.git > src/schema.txt

Structure (field numbers, wire types, message references) comes from the
published `generated.proto` files. Whether a Go field is a pointer, carries
`omitempty`, or is inlined in JSON comes from the struct tags of the Go types
in the same package, keyed by protobuf field number.

Output format (one record per line):
    A <alias> <proto package>          package alias used in type references
    P <alias>                          following messages belong to this package
    M <Name> [list]                    message; `list` = Go named slice type
                                       (JSON is the array of its `items`)
    <num> <jsonName> <label><type> <flags>
        label: '' singular, '*' repeated, 'map:<key>:' map (value type follows)
        type:  proto scalar name or <alias>.<Message>
        flags: p = Go pointer, o = omitempty, i = inlined in JSON, - = none
"""
import re
import subprocess
import sys

API_GROUPS_INCLUDE = re.compile(r'^[a-z]+/v\d+$')  # stable versions only


def git_ls(repo, pattern):
    out = subprocess.run(['git', '-C', repo, 'ls-tree', '-r', '--name-only', 'HEAD'],
                         check=True, capture_output=True, text=True).stdout
    return [p for p in out.splitlines() if re.search(pattern, p)]


def git_show(repo, path):
    return subprocess.run(['git', '-C', repo, 'show', f'HEAD:{path}'],
                          check=True, capture_output=True, text=True).stdout


def strip_comments(text):
    text = re.sub(r'/\*.*?\*/', '', text, flags=re.S)
    return re.sub(r'//[^\n]*', '', text)


FIELD_RE = re.compile(
    r'^(optional|repeated)?\s*(map<\s*(\w+)\s*,\s*([\w.]+)\s*>|[\w.]+)\s+(\w+)\s*=\s*(\d+)\s*;')


def parse_proto(text):
    text = strip_comments(text)
    pkg = re.search(r'^package\s+([\w.]+);', text, re.M).group(1)
    messages = {}
    for m in re.finditer(r'message\s+(\w+)\s*\{(.*?)\n\}', text, re.S):
        name, body = m.group(1), m.group(2)
        fields = []
        for line in body.splitlines():
            line = line.strip()
            if not line:
                continue
            fm = FIELD_RE.match(line)
            if not fm:
                raise SystemExit(f'unparsed line in {pkg}.{name}: {line}')
            label, typ, mk, mv, fname, num = fm.groups()
            if mk:
                fields.append(dict(num=int(num), name=fname, label='map', key=mk, type=mv))
            else:
                fields.append(dict(num=int(num), name=fname,
                                   label='rep' if label == 'repeated' else 'opt', type=typ))
        messages[name] = fields
    return pkg, messages


TAG_RE = re.compile(r'`([^`]*)`')


def parse_go(texts):
    """Returns ({struct: {num: (jsonName, pointer, omitempty, inline)}}, {slice type names})."""
    structs, slices = {}, set()
    for text in texts:
        for m in re.finditer(r'^type\s+(\w+)\s+\[\]', text, re.M):
            slices.add(m.group(1))
        for m in re.finditer(r'^type\s+(\w+)\s+struct\s*\{(.*?)^\}', text, re.S | re.M):
            name, body = m.group(1), m.group(2)
            fields = {}
            for line in body.splitlines():
                line = line.strip()
                tm = TAG_RE.search(line)
                if not tm or 'protobuf:"' not in tm.group(1):
                    continue
                decl = line[:tm.start()].split()
                gotype = decl[-1]
                tag = tm.group(1)
                js = re.search(r'json:"([^"]*)"', tag)
                pb = re.search(r'protobuf:"([^"]*)"', tag).group(1).split(',')
                if len(pb) < 2 or not pb[1].isdigit():
                    continue
                num = int(pb[1])
                pbname = next((p[5:] for p in pb if p.startswith('name=')), '')
                jparts = js.group(1).split(',') if js else [pbname]
                jname = jparts[0] or pbname
                # An anonymous (embedded) struct without a JSON name has its fields promoted.
                inline = len(decl) == 1 and jparts[0] == ''
                fields[num] = (jname, gotype.startswith('*'), 'omitempty' in jparts[1:], inline)
            structs[name] = fields
    return structs, slices


def go_files(repo, directory):
    paths = [p for p in git_ls(repo, '^' + re.escape(directory) + r'/[^/]+\.go$')
             if not p.endswith('_test.go') and '/zz_generated' not in p
             and not p.endswith('generated.pb.go')]
    return [git_show(repo, p) for p in paths]


def main():
    api, machinery = sys.argv[1], sys.argv[2]
    sources = []  # (repo, proto path, go dir)
    for path in git_ls(machinery, r'^pkg/(api/resource|apis/meta/v1|runtime|runtime/schema|util/intstr)/generated\.proto$'):
        sources.append((machinery, path))
    for path in git_ls(api, r'^[a-z]+/v\d+((alpha|beta)\d+)?/generated\.proto$'):
        sources.append((api, path))

    packages = []
    for repo, path in sources:
        pkg, messages = parse_proto(git_show(repo, path))
        structs, slices = parse_go(go_files(repo, path.rsplit('/', 1)[0]))
        packages.append((pkg, messages, structs, slices))

    aliases = {}
    for pkg, *_ in packages:
        parts = pkg.split('.')
        if pkg.startswith('k8s.io.api.'):
            alias = parts[3] + parts[4]  # e.g. corev1
        else:
            alias = {'k8s.io.apimachinery.pkg.apis.meta.v1': 'meta',
                     'k8s.io.apimachinery.pkg.runtime': 'runtime',
                     'k8s.io.apimachinery.pkg.runtime.schema': 'schema',
                     'k8s.io.apimachinery.pkg.util.intstr': 'intstr',
                     'k8s.io.apimachinery.pkg.api.resource': 'resource'}[pkg]
        aliases[pkg] = alias

    def ref(pkg, typ):
        typ = typ.lstrip('.')
        if '.' not in typ:
            return typ if typ in SCALARS else f'{aliases[pkg]}.{typ}'
        p, n = typ.rsplit('.', 1)
        if p not in aliases:
            raise SystemExit(f'unknown package {p} referenced from {pkg}')
        return f'{aliases[p]}.{n}'

    out = []
    for pkg, alias in aliases.items():
        out.append(f'A {alias} {pkg}')
    for pkg, messages, structs, slices in packages:
        out.append(f'P {aliases[pkg]}')
        for name, fields in messages.items():
            out.append(f'M {name}' + (' list' if name in slices else ''))
            gofields = structs.get(name, {})
            for f in fields:
                jname, ptr, omit, inline = gofields.get(f['num'], (f['name'], False, True, False))
                flags = ('p' if ptr else '') + ('o' if omit else '') + ('i' if inline else '')
                jname = jname or f['name']
                t = ref(pkg, f['type'])
                if f['label'] == 'map':
                    t = f'map:{f["key"]}:{t}'
                elif f['label'] == 'rep':
                    t = '*' + t
                out.append(f'{f["num"]} {jname} {t} {flags or "-"}')
    print('\n'.join(out))


SCALARS = {'string', 'bytes', 'bool', 'int32', 'int64', 'uint32', 'uint64', 'sint32', 'sint64',
           'fixed32', 'fixed64', 'sfixed32', 'sfixed64', 'double', 'float'}

if __name__ == '__main__':
    main()
