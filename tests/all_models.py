"""Every adversarial training method, as `(class, kwargs)` pytest parameters."""

import zerograd_tf as zg

MODELS = [
    (zg.ZeroGradModel, {}),
    (zg.ZeroGradModel, {"quantile_method": "top_k"}),
    (zg.MultiGradModel, {}),
    (zg.FGSMModel, {}),
    (zg.FGSMModel, {"random_init": True}),
    (zg.NFGSMModel, {}),
    (zg.ZeroGradNFGSMModel, {"quantile": 0.5}),
    (zg.PGDModel, {"steps": 3}),
    (zg.GradAlignModel, {"gradalign_lambda": 0.5}),
]
IDS = ["zerograd", "zerograd_topk", "multigrad", "fgsm", "fgsm_rs", "n_fgsm", "zerograd_n_fgsm",
       "pgd", "gradalign"]
