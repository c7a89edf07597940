"""cluster_check.py — the launchers in scripts/cluster use only flags that exist.

Every `deeper` command line in the sbatch files and in the YAML files' shell
scripts and command arrays is run with --help appended (variables replaced
by stand-in values of the right kind); it must exit 0.  The sbatch files must
pass `bash -n`, the YAML files must parse.
Usage: cluster_check.py DEEPER_BIN_DIR SCRIPTS_DIR
"""
import os, re, shlex, subprocess, sys
import yaml

BIN, DIR = sys.argv[1], sys.argv[2]
DEEPER = os.path.join(BIN, "deeper")
CMD = re.compile(r'(?:"\$DEEPER"|\$DEEPER|"\$0"|(?<![\w/.-])deeper)\s+(ingest|augment|train|keygen|eval|info)\b')
NUMERIC = re.compile(r"SHARDS|TASKS|THREADS|PORT|SIZE|CPUS")

def stand_in(m):
    name, default = m.group(1) or m.group(3), m.group(2)
    if default is not None:
        return default
    return "4" if NUMERIC.search(name or "") else "/tmp/x"

def expand(text):
    text = re.sub(r"\$\([^)]*\)", "x", text)
    return re.sub(r"\$\{(\w+)(?::-([^}]*))?\}|\$(\w+|\d)", stand_in, text)

def commands(text):
    """The deeper command lines in shell text: (subcommand, argv after it)."""
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        for m in CMD.finditer(line):
            rest = line[m.end():]
            rest = re.split(r"(?<!\\)'|\s&\s*$|\s&$|;|\|\||&&|\s\|\s", rest)[0]
            try:
                args = shlex.split(expand(rest))
            except ValueError as e:
                sys.exit("%s: cannot split: %s (%s)" % (m.group(0), rest, e))
            out.append((m.group(1), args, line.strip()))
    return out

ran = 0
def check(path, sub, args, line):
    global ran
    r = subprocess.run([DEEPER, sub] + args + ["--help"], capture_output=True, text=True)
    if r.returncode == 0:
        ran += 1
        return
    sys.exit("%s: `deeper %s %s --help` failed: %s\n  line: %s" % (path, sub, " ".join(args), r.stderr.strip(), line))

for name in sorted(os.listdir(DIR)):
    path = os.path.join(DIR, name)
    if name.endswith(".sbatch"):
        subprocess.run(["bash", "-n", path], check=True)
        for sub, args, line in commands(open(path).read()):
            check(path, sub, args, line)
    elif name.endswith((".yaml", ".yml")):
        for doc in yaml.safe_load_all(open(path)):
            def walk(node):
                if isinstance(node, dict):
                    for k, v in node.items():
                        if k == "command" and isinstance(v, list) and v:
                            if v[0] == "deeper" and len(v) > 1:
                                check(path, v[1], [expand(a) for a in v[2:]], " ".join(v))
                            elif v[0] in ("sh", "bash") and len(v) > 2:
                                for sub, args, line in commands(v[-1]):
                                    check(path, sub, args, line)
                        if k == "args" and isinstance(v, list) and v and isinstance(v[-1], str):
                            for sub, args, line in commands(v[-1]):
                                check(path, sub, args, line)
                        walk(v)
                elif isinstance(node, list):
                    for v in node:
                        walk(v)
            walk(doc)
print("cluster scripts: %d deeper command lines accepted" % ran)
if ran < 12:
    sys.exit("too few command lines found (%d): the extraction is broken" % ran)
