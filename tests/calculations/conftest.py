"""Fixtures for calculations: a cluster with its agent's API key, molecules, pseudopotentials."""

import pytest
from rest_framework.test import APIClient

from calculations import services
from clusters import services as cluster_services
from tests.factories import ClusterFactory, MoleculeFactory, PseudopotentialFactory

H2O_FDF = """SystemName water
SystemLabel h2o
%block ChemicalSpeciesLabel
 1  8  O
 2  1  H
%endblock ChemicalSpeciesLabel
MeshCutoff 200 Ry
"""


@pytest.fixture
def cluster(db):
    return ClusterFactory(name="hpc1", engines=["siesta", "pyscf", "command"])


@pytest.fixture
def other_cluster(db):
    return ClusterFactory(name="hpc2", engines=["siesta", "pyscf", "command"])


@pytest.fixture
def agent_key(cluster, root):
    _key, plaintext = cluster_services.create_key(actor=root, cluster=cluster, name="agent")
    return plaintext


@pytest.fixture
def agent_client(agent_key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {agent_key}")
    return client


@pytest.fixture
def other_agent_client(other_cluster, root):
    _key, plaintext = cluster_services.create_key(actor=root, cluster=other_cluster, name="agent")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {plaintext}")
    return client


@pytest.fixture
def water(db):
    return MoleculeFactory(name="water", species=["O", "H", "H"],
                           positions=[[0, 0, 0], [0.757, 0.586, 0], [-0.757, 0.586, 0]])


@pytest.fixture
def pseudos(db):
    return [PseudopotentialFactory(element="O", name="O.psf"), PseudopotentialFactory(element="H", name="H.psf")]


@pytest.fixture
def submit(alice, cluster, water, pseudos):
    """``submit(**overrides)``: a SIESTA calculation of water by alice on hpc1."""

    def make(**overrides):
        fields = {"owner": alice, "name": "water scf", "cluster": cluster, "engine": "siesta",
                  "config": {"fdf": H2O_FDF, "options": {}}, "molecule": water, "pseudopotentials": pseudos,
                  "analyses": ["energy_summary"], **overrides}
        return services.submit_calculation(**fields)

    return make
