import { createMemoryScheduleStore } from '../../src/store/memory-schedule-store.ts';
import { describeScheduleStoreContract } from '../support/schedule-store-contract.ts';

describeScheduleStoreContract('in memory', (options) => createMemoryScheduleStore(options));
