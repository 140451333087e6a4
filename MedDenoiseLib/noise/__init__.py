"""Physics-faithful noise simulators for CT, MR, ultrasound and X-ray images.

Every model comes as a function (``add_<name>_noise(x, ..., *, generator)``), a
deterministic ``nn.Module`` (``<Name>Noise``) and a sampler (``Random<Name>Noise``) whose
``draw(generator)`` returns the module plus a JSON-ready record; ``replay(record, x)``
reproduces the output bit for bit. Randomness always comes from an explicit
``torch.Generator`` on the data's device. Importing this package has no side effects
beyond registering the record names of the models.
"""

from .base import (
    RECORD_VERSION,
    NoiseTransform,
    RandomNoise,
    from_record,
    register_noise,
    registered_noise_names,
    replay,
    seeded_generator,
)
from .ct_image import CTImageNoise, RandomCTImageNoise, add_ct_image_noise, ct_noise_sigma_hu
from .ct_projection import CTProjectionNoise, RandomCTProjectionNoise, add_ct_projection_noise
from .ct_units import MU_WATER_PER_MM, hu_to_mu, mu_to_hu, water_equivalent_diameter_mm
from .gaussian import GaussianNoise, RandomGaussianNoise, add_gaussian_noise
from .modality import LEVELS, MODALITIES, MODALITY_NOISE, noise_level_name, random_modality_noise, simulate_noise
from .poisson_gaussian import PoissonGaussianNoise, RandomPoissonGaussianNoise, add_poisson_gaussian_noise
from .rician import RandomRicianNoise, RicianNoise, add_rician_noise, rician_background_mean
from .salt_pepper import RandomSaltPepperNoise, SaltPepperNoise, add_salt_pepper_noise
from .seed_protocols import (
    SEED_PROTOCOLS,
    GondaraGaussianNoise,
    GondaraPoissonNoise,
    RandomGondaraGaussianNoise,
    RandomGondaraPoissonNoise,
    add_gondara_gaussian_noise,
    add_gondara_poisson_noise,
    seed_protocol,
)
from .speckle import (
    MultiplicativeNoise,
    RandomMultiplicativeNoise,
    RandomSpeckleNoise,
    SpeckleNoise,
    add_multiplicative_noise,
    add_speckle_noise,
)
from .xray import RandomXRayNoise, XRayNoise, add_xray_noise

__all__ = [
    # protocol and records
    "RECORD_VERSION",
    "NoiseTransform",
    "RandomNoise",
    "from_record",
    "register_noise",
    "registered_noise_names",
    "replay",
    "seeded_generator",
    # models
    "add_gaussian_noise",
    "GaussianNoise",
    "RandomGaussianNoise",
    "add_poisson_gaussian_noise",
    "PoissonGaussianNoise",
    "RandomPoissonGaussianNoise",
    "add_ct_projection_noise",
    "CTProjectionNoise",
    "RandomCTProjectionNoise",
    "add_ct_image_noise",
    "CTImageNoise",
    "RandomCTImageNoise",
    "ct_noise_sigma_hu",
    "MU_WATER_PER_MM",
    "hu_to_mu",
    "mu_to_hu",
    "water_equivalent_diameter_mm",
    "add_rician_noise",
    "RicianNoise",
    "RandomRicianNoise",
    "rician_background_mean",
    "add_speckle_noise",
    "SpeckleNoise",
    "RandomSpeckleNoise",
    "add_multiplicative_noise",
    "MultiplicativeNoise",
    "RandomMultiplicativeNoise",
    "add_xray_noise",
    "XRayNoise",
    "RandomXRayNoise",
    "add_salt_pepper_noise",
    "SaltPepperNoise",
    "RandomSaltPepperNoise",
    "SEED_PROTOCOLS",
    "seed_protocol",
    "add_gondara_gaussian_noise",
    "GondaraGaussianNoise",
    "RandomGondaraGaussianNoise",
    "add_gondara_poisson_noise",
    "GondaraPoissonNoise",
    "RandomGondaraPoissonNoise",
    # modality defaults
    "MODALITIES",
    "LEVELS",
    "MODALITY_NOISE",
    "noise_level_name",
    "random_modality_noise",
    "simulate_noise",
]
