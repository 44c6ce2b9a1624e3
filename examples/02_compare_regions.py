# %% [markdown]
# # Compare regions and project many runs
#
# Discover the mouth, eyes and brows of a few faces into one store, then ask whether runs of one region share
# directions in W+ (subspace overlap) more than runs of different regions, and lay every frame of every run out
# in shared coordinates (PCA, UMAP).

# %% tags=["parameters"]
REGIONS = ["mouth", "eyes", "brows"]
SEEDS = [0, 1]
EPOCHS = None
N_FRAMES = None
STORE = "runs/regions"
UMAP = True

# %%
import mgm_analysis as mgm

settings = {k: v for k, v in {"epochs": EPOCHS, "n_frames": N_FRAMES}.items() if v is not None}
for region in REGIONS:
    for seed in SEEDS:
        mgm.discover(region=region, seed=seed, out=STORE, quiet=True, **settings)
store = mgm.open_store(STORE)
store.catalog[["run_id", "region", "seed", "locality", "spread", "inside_path"]]

# %% [markdown]
# ## Do regions have their own directions?
# Overlap 1: the same directions; 0: orthogonal. Within a region (another face) should be above between regions.

# %%
cmp = store.compare()
cmp["summary"]

# %%
cmp["overlap"]

# %%
cmp["layers"]   # which W+ layers carry each region's change

# %% [markdown]
# ## Every frame of every run, projected together
# `deltas=True` projects w_i − w*, so runs of different faces overlay.

# %%
store.projection(method="pca")

# %%
if UMAP:
    fig = store.projection(method="umap")
else:
    fig = None
fig
