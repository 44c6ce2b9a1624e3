# %% [markdown]
# # Discover a mouth manifold on toyfaces, look at it, score it
#
# The built-in `toyfaces` model draws faces from known factors (mouth openness, smile, eye openness, ...), so
# what a manifold changes can be read back independently. `mgm.discover` runs the engine on one face and one
# region and returns a `Run` in memory; nothing is written until `run.save(...)`.

# %% tags=["parameters"]
REGION = "mouth"
SEED = 3
EPOCHS = None      # None: the model's default (10 for toyfaces)
N_FRAMES = None    # None: the default (16)
STORE = "runs/notebook"

# %%
import mgm_analysis as mgm

settings = {k: v for k, v in {"epochs": EPOCHS, "n_frames": N_FRAMES}.items() if v is not None}
run = mgm.discover(region=REGION, seed=SEED, **settings)
run   # the contact sheet (the reference first, the region outlined) and the headline metrics

# %% [markdown]
# ## Is it a good manifold?
# *Locality*: the share of the change inside the region. *Spread* and *inside path*: whether the frames
# explore the region (a chain that stands still scores 0). *Jump ratio*: the largest step over the median.

# %%
for name in ("locality", "semantic_locality", "spread", "inside_path", "jump_ratio", "realism"):
    print(f"{name:18s} {run.metrics.get(name, float('nan')):.3f}")
print(run.verdict())

# %%
from mgm_analysis.metrics import describe_extent

print(describe_extent(run.meta["metrics"]))   # which factors move, over what range (the independent reader)

# %% [markdown]
# ## Watch it
# The frames as an animation (press play, or drag the slider), then a GIF for elsewhere.

# %%
run.figure()

# %%
run.gif("mouth.gif")

# %% [markdown]
# ## Keep it
# `save` writes the run folder `mgm discover --out` would write; `mgm.load_run` reads it back.

# %%
path = run.save(STORE)
again = mgm.load_run(path)
assert (again.latents == run.latents).all()
path
