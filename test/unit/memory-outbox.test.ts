import { MemoryOutbox } from '../../src/store/memory-outbox.ts';
import { describeOutboxContract } from '../support/outbox-contract.ts';

describeOutboxContract('in-memory fake', () => new MemoryOutbox());
