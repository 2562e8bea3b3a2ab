"""The base model against the verdicts in the shards' manifest, and the obligations
the trained weights inherit.

`curate run` records in manifest.json (`compliance`) which model the verdicts were
reached for, the base models and families they allow (`base_models`,
`base_families`: the target's family, narrowed by every same-family term such as
the Llama 2 license's), and the obligations of the kept data. A base of another
family was never judged with these data: the trainer refuses it. `curate train`
resolves the base's family from licenses/models.toml and judges it against the
policy's target rules before launching; the check here is the one that travels with
the shards, so a hand-written settings file cannot skip it.
"""

import shutil
from pathlib import Path

from . import Refusal


def check(manifest, base):
    """Raise Refusal when the manifest's verdicts do not allow `base`; otherwise
    return what was checked, for the training report."""
    c = manifest.get("compliance")
    if not c:
        return {"checked": False,
                "note": "the shards carry no compliance verdicts (their recipe had no [policy]); the base model was not checked"}
    ident = base.id or base.model
    allowed_models = [m.lower() for m in c.get("base_models") or []]
    families = c.get("base_families") or []
    target = c.get("target") or {}
    record = {"checked": True, "policy": c.get("policy"), "base": ident, "family": base.family,
              "judged_target": target.get("model"), "base_models": c.get("base_models") or [],
              "base_families": families}
    if ident.lower() in allowed_models:
        record["decision"] = "the base is the model the verdicts were reached for"
        return record
    terms = c.get("same_family") or []
    bound = [t for t in terms if t.get("families")]
    why = "".join(
        f"\n  source `{t['source']}` holds output that may train only {', '.join(f'`{f}`' for f in t['families'])}"
        + (f" (to be released under {', '.join(t.get('release_under') or [])})" if t.get("release_under") else "")
        for t in bound)
    if base.family is None:
        raise Refusal(
            f"the base model `{ident}` is not the model the verdicts in manifest.json were reached for "
            f"(`{target.get('model')}`), and its family is unknown{why}",
            hint="run through `curate train`, which resolves model families from licenses/models.toml, "
                 "or train the target model")
    if base.family not in families:
        allowed = ", ".join(f"`{f}`" for f in families) or "none"
        raise Refusal(
            f"the base model `{ident}` (family `{base.family}`) may not train on these shards: "
            f"the verdicts in manifest.json allow the family {allowed} "
            f"(they were reached for `{target.get('model')}`){why}",
            hint="train a model of an allowed family, or set `[target] model` to this base and run "
                 "`curate RECIPE` again so that every source is judged for it")
    record["decision"] = f"family `{base.family}` is allowed by the verdicts"
    return record


def copy_files(shards, dest):
    """Copy the shards' NOTICE and dataset card (as DATA_CARD.md) into `dest`."""
    shards, dest = Path(shards), Path(dest)
    copied = []
    for src, name in (("NOTICE", "NOTICE"), ("README.md", "DATA_CARD.md")):
        if (shards / src).exists():
            shutil.copyfile(shards / src, dest / name)
            copied.append(name)
    return copied


def lines(manifest, base_id):
    """What the data obligates, in sentences, for the weights' README and the report."""
    c = manifest.get("compliance")
    if not c:
        return ["The training data carries no compliance verdicts (its recipe had no `[policy]`)."]
    out = [f"Training data judged under policy `{c.get('policy')}` for `{(c.get('target') or {}).get('model')}`: "
           f"verdict **{c.get('verdict')}**.",
           f"Data license (all kept sources combined): `{c.get('license') or 'NOASSERTION'}`. "
           f"The base model `{base_id}` keeps its own license."]
    for t in c.get("same_family") or []:
        fams = ", ".join(t.get("families") or [])
        rel = ", ".join(t.get("release_under") or [])
        out.append(f"Source `{t.get('source')}` holds model output that may train only the `{fams}` family"
                   + (f" and must be released under `{rel}`" if rel else "") + ".")
    nc = c.get("non_commercial") or []
    if nc:
        out.append(f"Non-commercial terms apply (sources: {', '.join(nc)}).")
    for u in c.get("use_restrictions") or []:
        out.append(f"Use restrictions of `{u.get('license')}` carry over (source `{u.get('source')}`).")
    if c.get("attribution"):
        out.append("Attribution is owed to the sources listed in NOTICE.")
    return out
