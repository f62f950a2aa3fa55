"""Translation of traced PyTorch models into cnndsl's ops — the static knowledge of backbones.

    from cnndsl.translate.fx import translate          # imports torch
    t = translate(model_on_meta, (3, 224, 224), ["layer2", "layer4"], name="resnet18")
    for r in t.records:                                  # cnndsl.translate.records.Record
        r.name, r.op, r.args, r.inputs, r.shape, r.module

``records`` (plain data, JSON, no torch) is what a translation is; ``fx`` makes one from a model
(torch.fx + torchvision's feature-extraction tracer, shapes by ``ShapeProp`` on the meta device);
``tables`` maps torch modules / functions / methods to cnndsl ops; ``nodes`` turns records back into
cnndsl ops (opaque nodes keep the traced shape and the module's parameters, and an unknown
receptive field); ``cache`` keeps translations on disk. :mod:`cnndsl.backbone.expand` splices a
translation into a network's Graph.

``cnndsl import`` writes a whole translation as a spec: ``flow`` (records → items in module scopes,
the data flow as ``from`` / merges / residuals), ``blocks`` (module instances → block definitions
with parameters), ``to_spec`` (→ the Spec IR, repeats), ``importer`` (``MODULE:FACTORY(ARGS)``,
the round trip) and ``cli``.
"""
